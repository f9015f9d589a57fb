// Connection: one client's TLS connection on the aggregator's event loop — the stream, an outbox drained by a
// writer coroutine, a deadline watchdog, and a graceful close: flush what is queued, half-close, then read and
// discard until the peer hangs up or a grace period ends. It knows nothing of the protocol; the server reads the
// frames, decides, and says what to send. Everything runs on the one event-loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include "aggregator/connection_gate.h"
#include "aggregator/coordinator_options.h"
#include "common/codec/model_frames.h"
#include "sotto/v1/sotto.pb.h"

namespace sotto::aggregator {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  struct Hooks {
    std::function<void(Connection&)> on_deadline;  // the armed deadline passed (the watchdog does nothing else)
    std::function<void(Connection&)> on_closed;    // the socket was closed; called once
    std::function<void(std::size_t)> on_sent;      // bytes of a frame written
  };

  Connection(ConnectionId id, boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& ssl, Hooks hooks);

  // Starts the watchdog; start_writer() once the handshake is done.
  void start_watchdog();
  void start_writer();

  // The deadline the watchdog enforces, and what to say when it passes.
  void arm(Duration after, std::string reason);
  void disarm();
  const std::string& timeout_reason() const { return timeout_reason_; }

  void send(codec::SharedFrame frame);
  std::size_t send(v1::Envelope envelope);  // returns the frame's size
  // No more input is processed: the writer sends what is queued, half-closes and arms the flush grace.
  void finish_after_flush();
  void close();
  // Reads and discards frames until the peer hangs up or the connection is closed, then closes it.
  boost::asio::awaitable<void> drain(std::string& buffer);

  std::string who() const { return client_id.empty() ? peer : "client '" + client_id + "' (" + peer + ")"; }

  const ConnectionId id;
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream;
  ConnectionGate::Ticket ticket;  // empty for a refused connection
  std::string refusal;            // why the gate refused it: told to the peer after the handshake, then closed
  std::size_t frame_limit = 0;    // server.max_hello_bytes until the hello is accepted, then server.max_frame_bytes
  std::string peer;
  std::string client_id;
  bool handshake_done = false;
  bool in_protocol = false;  // the coordinator knows this connection
  bool closing = false;      // no more input is processed; flush the outbox, then close
  bool closed = false;

 private:
  // Each holds the connection alive while it runs.
  boost::asio::awaitable<void> watchdog(std::shared_ptr<Connection> self);
  boost::asio::awaitable<void> writer(std::shared_ptr<Connection> self);

  Hooks hooks_;
  std::deque<codec::SharedFrame> outbox_;
  boost::asio::steady_timer wake_;
  boost::asio::steady_timer watchdog_;
  TimePoint deadline_ = TimePoint::max();
  std::string timeout_reason_;
};

}  // namespace sotto::aggregator
