#include "aggregator/http_endpoint.h"

#include <openssl/crypto.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

#include "common/util/error.h"

namespace sotto::aggregator {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds(10);
constexpr std::uint32_t kHeaderLimit = 8 * 1024;

http::response<http::string_body> make_response(const http::request<http::empty_body>& request,
                                                HttpEndpoint::Response r) {
  http::response<http::string_body> out{static_cast<http::status>(r.status), request.version()};
  out.set(http::field::server, "sotto-aggregator");
  out.set(http::field::content_type, r.content_type);
  out.set(http::field::cache_control, "no-store");
  if (r.status == 401) out.set(http::field::www_authenticate, "Bearer");
  out.keep_alive(request.keep_alive());
  const bool head = request.method() == http::verb::head;
  out.body() = head ? std::string() : std::move(r.body);
  out.prepare_payload();
  if (head) out.content_length(r.body.size());
  return out;
}

}  // namespace

HttpEndpoint::HttpEndpoint(asio::io_context& io, const std::string& address, std::uint16_t port,
                           std::string bearer_token, Handler handler, asio::ssl::context* tls)
    : io_(io), acceptor_(io), bearer_token_(std::move(bearer_token)), handler_(std::move(handler)), tls_(tls) {
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) throw Error("http.listen_address \"" + address + "\" is not an IP address: " + ec.message());
  const tcp::endpoint endpoint(ip, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw Error("cannot listen for HTTP on " + address + ":" + std::to_string(port) + ": " + ec.message() +
                " (set http.port to a free port, or 0 for any)");
  }
}

std::uint16_t HttpEndpoint::port() const { return acceptor_.local_endpoint().port(); }

void HttpEndpoint::start() { asio::co_spawn(io_, accept_loop(), asio::detached); }

void HttpEndpoint::close() {
  closed_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

asio::awaitable<void> HttpEndpoint::accept_loop() {
  while (!closed_) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (closed_) break;
    if (ec) {  // descriptors exhausted or the like: wait a little rather than spin
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    if (open_ >= kMaxConnections) continue;  // closed as it goes out of scope
    ++open_;
    asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
  }
}

bool HttpEndpoint::authorized(std::string_view header) const {
  if (bearer_token_.empty()) return true;
  const std::string expected = "Bearer " + bearer_token_;
  return header.size() == expected.size() && CRYPTO_memcmp(header.data(), expected.data(), expected.size()) == 0;
}

asio::awaitable<void> HttpEndpoint::serve(tcp::socket socket) {
  if (tls_) {
    asio::ssl::stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls_);
    beast::get_lowest_layer(stream).expires_after(kIdleTimeout);
    auto [handshake_error] = co_await stream.async_handshake(asio::ssl::stream_base::server,
                                                             asio::as_tuple(asio::use_awaitable));
    if (!handshake_error) co_await exchange(stream);
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
  } else {
    beast::tcp_stream stream(std::move(socket));
    co_await exchange(stream);
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }
  --open_;
}

// Requests and responses on one connection until it closes, errs, idles or asks to close.
template <typename Stream>
asio::awaitable<void> HttpEndpoint::exchange(Stream& stream) {
  beast::flat_buffer buffer;
  for (;;) {
    beast::get_lowest_layer(stream).expires_after(kIdleTimeout);
    http::request_parser<http::empty_body> parser;
    parser.header_limit(kHeaderLimit);
    auto [read_error, unused] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    if (read_error) break;  // closed, timed out, malformed, oversized or with a body
    const auto& request = parser.get();
    Response r;
    const std::string_view target = request.target();
    const std::string_view path = target.substr(0, target.find('?'));
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      r = {405, "text/plain; charset=utf-8", "only GET and HEAD are served\n"};
    } else if (!authorized(request[http::field::authorization])) {
      r = {401, "text/plain; charset=utf-8", "a bearer token is required (Authorization: Bearer <http.bearer_token>)\n"};
    } else {
      r = handler_(path);
    }
    auto response = make_response(request, std::move(r));
    const bool keep_alive = response.keep_alive();
    auto [write_error, written] = co_await http::async_write(stream, response, asio::as_tuple(asio::use_awaitable));
    if (write_error || !keep_alive) break;
  }
}

}  // namespace sotto::aggregator
