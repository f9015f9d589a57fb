// UploadGate: a byte budget on the updates the daemon reassembles at once. Each upload, before its chunks are
// read, reserves the bytes it will take (the model's size, or its masked input's) and waits, first come first
// served, until they fit; one upload always gets in, however large. A waiting client's chunks stay in its socket
// (TCP flow control holds the rest on its side), so the daemon's memory for uploads stays near the budget at any
// cohort size instead of growing with it: [server] max_upload_assembly_bytes, 0 for no limit.
//
// On the daemon's one event loop; not thread-safe.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sotto::aggregator {

class UploadGate {
 public:
  explicit UploadGate(std::size_t budget_bytes) : budget_(budget_bytes) {}

  // Held while an upload is reassembled; letting it go returns its bytes and lets the next waiters in.
  class Pass {
   public:
    Pass(UploadGate* gate, std::size_t bytes) : gate_(gate), bytes_(bytes) {}
    Pass(Pass&& other) noexcept : gate_(other.gate_), bytes_(other.bytes_) { other.gate_ = nullptr; }
    Pass& operator=(Pass&&) = delete;
    ~Pass() {
      if (gate_) gate_->leave(bytes_);
    }

   private:
    UploadGate* gate_;
    std::size_t bytes_;
  };

  // Returns once `bytes` fit in the budget (or nothing else is inside) and no earlier upload is still waiting.
  boost::asio::awaitable<Pass> enter(std::size_t bytes);

  std::size_t inside_bytes() const { return inside_bytes_; }
  std::size_t waiting() const { return waiting_.size(); }

 private:
  struct Waiter {
    std::size_t bytes;
    boost::asio::steady_timer wakeup;
    bool admitted = false;
  };

  bool fits(std::size_t bytes) const;
  void leave(std::size_t bytes);

  std::size_t budget_;
  std::size_t inside_bytes_ = 0;
  std::size_t inside_count_ = 0;
  std::deque<std::shared_ptr<Waiter>> waiting_;
};

}  // namespace sotto::aggregator
