#include "aggregator/upload_gate.h"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sotto::aggregator {

namespace asio = boost::asio;

bool UploadGate::fits(std::size_t bytes) const {
  return budget_ == 0 || inside_count_ == 0 || inside_bytes_ + bytes <= budget_;
}

asio::awaitable<UploadGate::Pass> UploadGate::enter(std::size_t bytes) {
  if (waiting_.empty() && fits(bytes)) {
    inside_bytes_ += bytes;
    ++inside_count_;
    co_return Pass(this, bytes);
  }
  auto waiter = std::make_shared<Waiter>(Waiter{bytes, asio::steady_timer(co_await asio::this_coro::executor)});
  waiter->wakeup.expires_at(asio::steady_timer::time_point::max());
  waiting_.push_back(waiter);
  while (!waiter->admitted) {
    boost::system::error_code ignored;  // leave() cancels the timer to wake this upload
    co_await waiter->wakeup.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  co_return Pass(this, bytes);  // leave() counted it in already
}

void UploadGate::leave(std::size_t bytes) {
  inside_bytes_ -= bytes;
  --inside_count_;
  while (!waiting_.empty() && fits(waiting_.front()->bytes)) {
    auto next = std::move(waiting_.front());
    waiting_.pop_front();
    inside_bytes_ += next->bytes;
    ++inside_count_;
    next->admitted = true;
    next->wakeup.cancel();
  }
}

}  // namespace sotto::aggregator
