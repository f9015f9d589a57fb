#include "client/aggregator_link.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <tuple>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "common/net/frame_io.h"
#include "common/net/tls_context.h"
#include "common/util/error.h"
#include "common/util/file.h"

namespace sotto::client {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

AggregatorLink::AggregatorLink(asio::io_context& io, asio::ssl::context& ssl, const ClientConfig& config,
                               ConsentGate& consent, ConsentScope needed)
    : config_(config), consent_(consent), needed_(needed), stream_(io, ssl), watch_(std::make_shared<Watch>(io)) {
  arm(config_.connect_timeout);
  asio::co_spawn(io, watchdog(watch_, this), asio::detached);
}

AggregatorLink::~AggregatorLink() {
  watch_->done = true;
  watch_->timer.cancel();
  close_socket();
}

void AggregatorLink::close_socket() {
  auto& socket = stream_.lowest_layer();
  if (!socket.is_open()) return;
  consent_.detach(socket.native_handle());
  boost::system::error_code ignored;
  socket.close(ignored);
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
  close_socket();
}

asio::awaitable<void> AggregatorLink::connect(std::string& step) {
  step = "connecting";
  net::expect_server_name(stream_, config_.server_name);
  tcp::resolver resolver(stream_.get_executor());
  auto endpoints = co_await resolver.async_resolve(config_.host, std::to_string(config_.port), asio::use_awaitable);
  auto& socket = stream_.lowest_layer();
  boost::system::error_code failed = asio::error::host_not_found;
  for (const auto& entry : endpoints) {
    socket.open(entry.endpoint().protocol());
    if (!consent_.attach(socket.native_handle(), needed_)) {
      close_socket();
      throw Error("the person's consent does not cover this work (any more): not connecting");
    }
    std::tie(failed) = co_await socket.async_connect(entry.endpoint(), asio::as_tuple(asio::use_awaitable));
    if (!failed) break;
    close_socket();
  }
  if (failed) throw boost::system::system_error(failed);
  if (!consent_.allows(socket.native_handle())) {  // revoked while connecting: not one byte goes out
    close_socket();
    throw Error("the person's consent was revoked while connecting: not sending anything");
  }
  socket.set_option(tcp::no_delay(true));
  step = "TLS handshake";
  co_await stream_.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
}

asio::awaitable<void> AggregatorLink::read(v1::Envelope& env, std::chrono::milliseconds timeout) {
  arm(timeout);
  auto r = co_await net::async_read_envelope(stream_, env, config_.max_frame_bytes, buffer_);
  if (r.error) throw Error("aggregator sent a bad frame: " + r.error->message);
}

asio::awaitable<void> AggregatorLink::write(v1::Envelope env) {
  co_await write_frame(net::encode_frame(std::move(env)));
}

asio::awaitable<void> AggregatorLink::write_frame(const std::string& frame) {
  if (!config_.audit_sent_frames_file.empty()) util::append_to_file(config_.audit_sent_frames_file, frame);
  co_await net::async_write_frame(stream_, frame);
}

// Asio's TLS stream gives OpenSSL one BIO of a pair, through which every ciphertext byte passes between OpenSSL and
// the socket: its counters are the wire's.
std::uint64_t AggregatorLink::bytes_sent() const {
  BIO* bio = SSL_get_wbio(const_cast<asio::ssl::stream<tcp::socket>&>(stream_).native_handle());
  return bio ? BIO_number_written(bio) : 0;
}

std::uint64_t AggregatorLink::bytes_received() const {
  BIO* bio = SSL_get_rbio(const_cast<asio::ssl::stream<tcp::socket>&>(stream_).native_handle());
  return bio ? BIO_number_read(bio) : 0;
}

}  // namespace sotto::client
