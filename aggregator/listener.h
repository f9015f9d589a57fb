// Listener: the aggregator's listening socket and its accept loop. Each accepted TCP connection is handed to the
// server's callback; nothing here knows TLS or the protocol.
//
// Accept errors never make it spin. When the process runs out of file descriptors (EMFILE, ENFILE) or kernel
// memory, the loop backs off (doubling from 5 ms to 1 s) and uses the one descriptor it keeps in reserve to
// accept and close the connections waiting in the backlog, so their clients see the connection end at once and
// retry later instead of hanging. A failing accept is logged once, then at most once every 5 s with the count of
// failures in between.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/log/log_throttle.h"

namespace sotto::aggregator {

class Listener {
 public:
  using OnAccept = std::function<void(boost::asio::ip::tcp::socket)>;

  // Binds and listens; throws sotto::Error naming the address and what to change when it cannot.
  Listener(boost::asio::io_context& io, const std::string& address, std::uint16_t port);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  std::uint16_t port() const;
  // Starts accepting; `on_accept` runs on the io_context for every connection.
  void start(OnAccept on_accept);
  // Stops accepting and closes the socket.
  void close();

  // Accept failures seen so far, and connections closed unserved because descriptors ran out.
  std::uint64_t accept_failures() const { return accept_failures_; }
  std::uint64_t shed_connections() const { return shed_; }

 private:
  boost::asio::awaitable<void> accept_loop();
  void on_accept_error(const boost::system::error_code& ec, std::chrono::milliseconds backoff);
  std::size_t shed_backlog();
  void open_reserve();
  void close_reserve();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer backoff_timer_;
  OnAccept on_accept_;
  int reserve_fd_ = -1;
  bool closed_ = false;
  log::LogThrottle throttle_{std::chrono::seconds(5)};
  std::uint64_t accept_failures_ = 0;
  std::uint64_t shed_ = 0;
};

}  // namespace sotto::aggregator
