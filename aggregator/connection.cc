#include "aggregator/connection.h"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/net/frame_io.h"

namespace sotto::aggregator {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// After the last message, how long the peer has to read it and hang up.
constexpr auto kFlushGrace = std::chrono::seconds(2);

}  // namespace

Connection::Connection(ConnectionId id_, tcp::socket socket, asio::ssl::context& ssl, Hooks hooks)
    : id(id_),
      stream(std::move(socket), ssl),
      hooks_(std::move(hooks)),
      wake_(stream.get_executor()),
      watchdog_(stream.get_executor()) {}

void Connection::start_watchdog() {
  asio::co_spawn(stream.get_executor(), watchdog(shared_from_this()), asio::detached);
}

void Connection::start_writer() {
  asio::co_spawn(stream.get_executor(), writer(shared_from_this()), asio::detached);
}

void Connection::arm(Duration after, std::string reason) {
  deadline_ = Clock::now() + after;
  timeout_reason_ = std::move(reason);
  watchdog_.cancel();
}

void Connection::disarm() {
  deadline_ = TimePoint::max();
  watchdog_.cancel();
}

asio::awaitable<void> Connection::watchdog(std::shared_ptr<Connection> /*keeps this alive*/) {
  while (!closed) {
    watchdog_.expires_at(deadline_);
    co_await watchdog_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (closed || Clock::now() < deadline_) continue;
    deadline_ = TimePoint::max();  // told once; whoever handles it may arm a new one
    hooks_.on_deadline(*this);
  }
}

void Connection::send(codec::SharedFrame frame) {
  if (closed) return;
  outbox_.push_back(std::move(frame));
  wake_.cancel();
}

std::size_t Connection::send(v1::Envelope envelope) {
  auto frame = std::make_shared<const std::string>(net::encode_frame(std::move(envelope)));
  const std::size_t size = frame->size();
  send(std::move(frame));
  return size;
}

void Connection::finish_after_flush() {
  closing = true;
  wake_.cancel();
}

void Connection::close() {
  if (closed) return;
  closed = true;
  boost::system::error_code ignored;
  stream.lowest_layer().close(ignored);
  wake_.cancel();
  watchdog_.cancel();
  hooks_.on_closed(*this);
}

asio::awaitable<void> Connection::writer(std::shared_ptr<Connection> /*keeps this alive*/) {
  try {
    for (;;) {
      while (!outbox_.empty() && !closed) {
        auto frame = outbox_.front();
        co_await net::async_write_frame(stream, *frame);
        hooks_.on_sent(frame->size());
        outbox_.pop_front();
      }
      if (closed) co_return;
      if (closing) break;
      wake_.expires_at(TimePoint::max());
      co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    // Everything is sent: half-close and give the peer a moment to read it and hang up.
    boost::system::error_code ignored;
    stream.lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
    arm(kFlushGrace, "peer did not close after the final message");
  } catch (const boost::system::system_error& e) {
    spdlog::debug("{}: write failed: {}", who(), e.code().message());
    close();
  }
}

asio::awaitable<void> Connection::drain(std::string& buffer) {
  try {
    for (;;) {
      v1::Envelope ignored;
      auto r = co_await net::async_read_envelope(stream, ignored, frame_limit, buffer);
      if (r.error) break;
    }
  } catch (const boost::system::system_error&) {
  }
  close();
}

}  // namespace sotto::aggregator
