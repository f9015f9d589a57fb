// TcpProxy: a loopback TCP relay between clients and a server that keeps one ordered log of what it sees — each
// connection it accepts, each read of bytes a client sent (and of bytes the server sent back), a client closing — and of the markers the test adds
// with mark(). A test asserts at the socket level what a client sent, and in what order relative to its own
// actions: "no connection before the marker", "not a byte after it". Bytes are relayed unchanged (TLS passes
// through).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sotto::test {

class TcpProxy {
 public:
  enum class Seen { kAccepted, kClientBytes, kServerBytes, kClientClosed, kMarker };
  struct Event {
    Seen what;
    int connection = 0;      // 1, 2, ... in the order accepted (0 for a marker)
    std::size_t bytes = 0;   // kClientBytes, kServerBytes
    std::string label;       // kMarker
  };

  // Listens on 127.0.0.1 (a free port) and relays to 127.0.0.1:target_port. Throws std::runtime_error.
  explicit TcpProxy(std::uint16_t target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  std::uint16_t port() const { return port_; }
  void mark(const std::string& label);
  std::vector<Event> events() const;
  // The events after the marker `label` (all of them if there is none).
  std::vector<Event> events_after(const std::string& label) const;
  int connections_accepted() const;
  // The bytes of kClientBytes or kServerBytes events on `connection` (1, 2, ...).
  std::uint64_t bytes_seen(Seen what, int connection) const;

 private:
  struct Pair {
    int client = -1, server = -1, id = 0;
  };
  void relay();
  void record(Event e);
  void close_pair(Pair& p);

  std::uint16_t target_port_;
  int listener_ = -1;
  int wake_[2] = {-1, -1};
  std::uint16_t port_ = 0;
  std::vector<Pair> pairs_;  // the relay thread's
  mutable std::mutex mutex_;
  std::vector<Event> events_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace sotto::test
