// AggregatorLink: the client's transport for one session — a TLS 1.3 connection to the aggregator (resolve, TCP,
// handshake with the expected server name), frames in and out, a deadline on every wait enforced by a watchdog,
// and abort() to cut it from the event loop (Client::stop). It knows nothing of the protocol. Each session gets a
// new link. Its socket is attached to the consent gate (consent_gate.h) before it connects, which refuses it
// without the person's consent and can cut it from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include "client/client_config.h"
#include "client/consent_gate.h"
#include "sotto/v1/sotto.pb.h"

namespace sotto::client {

class AggregatorLink {
 public:
  AggregatorLink(boost::asio::io_context& io, boost::asio::ssl::context& ssl, const ClientConfig& config,
                 ConsentGate& consent, ConsentScope needed);
  ~AggregatorLink();
  AggregatorLink(const AggregatorLink&) = delete;
  AggregatorLink& operator=(const AggregatorLink&) = delete;

  // Within connection.connect_timeout_ms. Throws boost::system::system_error; `step` says how far it got; throws
  // sotto::Error, before any packet leaves, when consent does not cover the work.
  boost::asio::awaitable<void> connect(std::string& step);
  // The next envelope within `timeout`. Throws sotto::Error for a malformed frame, system_error when the connection
  // fails or the deadline passes (then timed_out()).
  boost::asio::awaitable<void> read(v1::Envelope& env, std::chrono::milliseconds timeout);
  boost::asio::awaitable<void> write(v1::Envelope env);
  boost::asio::awaitable<void> write_frame(const std::string& frame);
  // The deadline for whatever comes next (local work may set a long one).
  void arm(std::chrono::milliseconds timeout);
  // Closes the socket: pending reads and writes fail at once.
  void abort();

  bool timed_out() const { return watch_->timed_out; }
  // The bytes this connection put on the socket and TLS took off it so far: TLS records, the handshake included
  // (what a packet capture sees as TCP payload). The ledger records these.
  std::uint64_t bytes_sent() const;
  std::uint64_t bytes_received() const;
  std::uint64_t bytes_moved() const { return bytes_sent() + bytes_received(); }

 private:
  struct Watch {
    explicit Watch(boost::asio::io_context& io) : timer(io) {}
    boost::asio::steady_timer timer;
    bool done = false;
    bool timed_out = false;
  };
  // Closes the stream when the armed deadline passes; ends when the link is destroyed.
  static boost::asio::awaitable<void> watchdog(std::shared_ptr<Watch> watch, AggregatorLink* link);

  void close_socket();

  const ClientConfig& config_;
  ConsentGate& consent_;
  ConsentScope needed_;
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream_;
  std::shared_ptr<Watch> watch_;
  std::string buffer_;  // the frame being read
};

}  // namespace sotto::client
