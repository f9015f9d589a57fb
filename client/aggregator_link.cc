#include "client/aggregator_link.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include "common/net/frame_io.h"
#include "common/net/tls_context.h"
#include "common/util/error.h"

namespace sotto::client {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

AggregatorLink::AggregatorLink(asio::io_context& io, asio::ssl::context& ssl, const ClientConfig& config)
    : config_(config), stream_(io, ssl), watch_(std::make_shared<Watch>(io)) {
  arm(config_.connect_timeout);
  asio::co_spawn(io, watchdog(watch_, this), asio::detached);
}

AggregatorLink::~AggregatorLink() {
  watch_->done = true;
  watch_->timer.cancel();
}

asio::awaitable<void> AggregatorLink::watchdog(std::shared_ptr<Watch> watch, AggregatorLink* link) {
  while (!watch->done) {
    co_await watch->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (watch->done) break;
    if (Clock::now() >= watch->timer.expiry()) {  // not re-armed meanwhile
      watch->timed_out = true;
      link->abort();
      break;
    }
  }
}

void AggregatorLink::arm(std::chrono::milliseconds timeout) {
  watch_->timer.expires_after(timeout);
}

void AggregatorLink::abort() {
  boost::system::error_code ignored;
  stream_.lowest_layer().close(ignored);
}

asio::awaitable<void> AggregatorLink::connect(std::string& step) {
  step = "connecting";
  net::expect_server_name(stream_, config_.server_name);
  tcp::resolver resolver(stream_.get_executor());
  auto endpoints = co_await resolver.async_resolve(config_.host, std::to_string(config_.port), asio::use_awaitable);
  co_await asio::async_connect(stream_.lowest_layer(), endpoints, asio::use_awaitable);
  stream_.lowest_layer().set_option(tcp::no_delay(true));
  step = "TLS handshake";
  co_await stream_.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
}

asio::awaitable<void> AggregatorLink::read(v1::Envelope& env, std::chrono::milliseconds timeout) {
  arm(timeout);
  auto r = co_await net::async_read_envelope(stream_, env, config_.max_frame_bytes, buffer_);
  bytes_received_ += r.bytes;
  if (r.error) throw Error("aggregator sent a bad frame: " + r.error->message);
}

asio::awaitable<void> AggregatorLink::write(v1::Envelope env) {
  co_await write_frame(net::encode_frame(std::move(env)));
}

asio::awaitable<void> AggregatorLink::write_frame(const std::string& frame) {
  co_await net::async_write_frame(stream_, frame);
  bytes_sent_ += frame.size();
}

}  // namespace sotto::client
