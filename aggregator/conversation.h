// Conversation: what the daemon and one client say to each other on a connection, from the TLS handshake to the
// close — the hello (authenticated, then handed to the coordinator), then the protocol's frames: an update
// reassembled from its stream of chunks (update_stream.h), the SecAgg+ steps' messages decoded, a client's error
// frame taken as its reason for leaving. The coordinator judges every message; the server carries out its actions.
//
// The conversation reaches the rest of the server through ConversationHost: the coordinator (null until the start
// is prepared: hellos wait for it), the dispatch of the coordinator's actions, traffic counts and the throttled log.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "aggregator/authenticator.h"
#include "aggregator/connection.h"
#include "aggregator/round_coordinator.h"
#include "aggregator/upload_gate.h"
#include "common/secagg/step.h"

namespace sotto::aggregator {

class ConversationHost {
 public:
  virtual ~ConversationHost() = default;
  // The coordinator once the start is prepared, else null.
  virtual RoundCoordinator* coordinator() = 0;
  // Returns once the coordinator exists or the server is stopping.
  virtual boost::asio::awaitable<void> coordinator_ready() = 0;
  virtual void dispatch(Actions actions) = 0;
  // Bytes received; `step` names the SecAgg+ step they belong to, if any.
  virtual void count_received(std::size_t bytes, std::optional<secagg::Step> step) = 0;
  // A warning about a connection, throttled while it is unauthenticated (anyone can cause those at will).
  virtual void warn_about(const Connection& c, const std::string& message) = 0;
  // A connection refused or ended for breaking the rules, for the metrics: "tls_handshake" or an error code's label.
  virtual void count_refused(std::string_view reason) = 0;
};

struct ConversationLimits {
  Duration handshake_timeout = std::chrono::seconds(10);
  Duration refused_handshake_timeout = std::chrono::seconds(2);  // for a connection the gate refused
  Duration hello_timeout = std::chrono::seconds(10);
  std::size_t max_frame_bytes = 8u << 20;  // after hello (before it, Connection::frame_limit holds the hello cap)
  std::size_t max_upload_assembly_bytes = 0;  // UploadGate's budget; 0: no limit
};

class Conversation {
 public:
  Conversation(ConversationHost& host, const Authenticator& authenticator, ConversationLimits limits);

  // The connection's whole conversation; it closes the connection when done.
  boost::asio::awaitable<void> run(std::shared_ptr<Connection> c);
  // The server found the peer misbehaving (or its deadline passed): tell it, tell the coordinator, close.
  void violation(const std::shared_ptr<Connection>& c, v1::ErrorCode code, const std::string& message);

 private:
  enum class HelloOutcome { kAdmitted, kRefused, kStopping };

  boost::asio::awaitable<bool> handshake(const std::shared_ptr<Connection>& c);
  boost::asio::awaitable<void> refuse(std::shared_ptr<Connection> c, std::string& buffer);
  boost::asio::awaitable<HelloOutcome> read_hello(const std::shared_ptr<Connection>& c, std::string& buffer);
  boost::asio::awaitable<bool> serve(const std::shared_ptr<Connection>& c, std::string& buffer);
  boost::asio::awaitable<void> receive_update(std::shared_ptr<Connection> c, v1::UpdateUpload header,
                                              std::string& buffer);
  void secagg_message(const std::shared_ptr<Connection>& c, const v1::Envelope& env);
  // The connection ended under the protocol (closed by the peer, an error frame): the coordinator hears why.
  void lost(const std::shared_ptr<Connection>& c, const std::string& reason);

  ConversationHost& host_;
  const Authenticator& authenticator_;
  ConversationLimits limits_;
  UploadGate uploads_;
};

}  // namespace sotto::aggregator
