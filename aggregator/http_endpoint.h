// HttpEndpoint: the daemon's small HTTP/1.1 listener for operators — /status for people, /metrics for Prometheus,
// /healthz, /readyz —
// with Boost.Beast on the daemon's own single-threaded io_context, so that a handler reads the server's state
// without locks.
//
// It answers GET and HEAD only, with bodies the handler builds; a request with a body, a header block over 8 KiB,
// or an idle connection past 10 s is closed. At most kMaxConnections connections at once (more are closed on
// accept). With a bearer token configured, every request must carry "Authorization: Bearer <token>" (compared in
// constant time), else 401. With a TLS context it serves HTTPS (the context's handshake first, within the idle
// timeout); without one, plain HTTP: bind it to loopback (the default) or put it behind a proxy.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace sotto::aggregator {

class HttpEndpoint {
 public:
  struct Response {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
  };
  // The response for a request's path (the target without its query string).
  using Handler = std::function<Response(std::string_view path)>;

  static constexpr std::size_t kMaxConnections = 32;

  // Binds address:port (0: any free port); throws sotto::Error naming the address when it cannot. `tls`, when not
  // null, must outlive the endpoint.
  HttpEndpoint(boost::asio::io_context& io, const std::string& address, std::uint16_t port, std::string bearer_token,
               Handler handler, boost::asio::ssl::context* tls = nullptr);
  std::uint16_t port() const;
  // The context for connections accepted from now on (it must outlive them and the endpoint); with TLS only.
  void use_tls(boost::asio::ssl::context& tls) { tls_ = &tls; }
  void start();
  void close();

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
  template <typename Stream>
  boost::asio::awaitable<void> exchange(Stream& stream);
  bool authorized(std::string_view header) const;

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::string bearer_token_;
  Handler handler_;
  boost::asio::ssl::context* tls_;
  std::size_t open_ = 0;
  bool closed_ = false;
};

}  // namespace sotto::aggregator
