// AggregatorServer: the daemon's network side around a RoundCoordinator that owns every decision, on a
// single-threaded Boost.Asio io_context. Its pieces, each in its own file:
//   Listener (listener.h)            the listening socket and an accept loop that backs off at resource limits
//   ConnectionGate (connection_gate.h)  caps on connections, in all and per address, before and after hello
//   Connection (connection.h)        one TLS stream: outbox, writer, deadline watchdog, graceful close
//   Conversation (conversation.h)    what is said on one connection: handshake, hello, the protocol's frames
//   read_update_stream (update_stream.h)  an update's chunks reassembled
//   Authenticator (authenticator.h)  the client's identity from its certificate or token
//   action_encoder.h                 the coordinator's actions as envelopes
//   RoundRecorder (round_recorder.h) checkpoint, evaluation off the event loop, rounds.jsonl, and the start
//   OperatorEndpoint (operator_endpoint.h)  [http]: /status, /metrics (metrics.h), /healthz, /readyz
//   ServerCredentials (server_credentials.h)  the TLS context and the authenticator that SIGHUP rotates
// This file holds what ties them together: accepting connections, the dispatch of the coordinator's actions to
// them, the coordinator's deadlines, and the shutdown.
// SIGINT/SIGTERM stop it cleanly. SIGHUP reloads what an operator rotates without a restart — the server
// certificate and key, the client CA, the auth mode and the client tokens — for the connections that come after it;
// connections in flight finish with what they had.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "aggregator/aggregator_config.h"
#include "aggregator/round_recorder.h"
#include "common/ml/training_plan.h"
#include "common/model/parameters.h"

namespace sotto::aggregator {


class AggregatorServer {
 public:
  // `reload` re-reads the config for SIGHUP (none: SIGHUP is logged and ignored).
  AggregatorServer(AggregatorConfig config, ModelFactory initial_model, Evaluator evaluator,
                   std::function<AggregatorConfig()> reload = {});
  ~AggregatorServer();
  AggregatorServer(const AggregatorServer&) = delete;
  AggregatorServer& operator=(const AggregatorServer&) = delete;

  // Runs until every round is done or a stop signal arrives. Throws sotto::Error when it cannot start (bad
  // certificate, port in use, unreadable checkpoint).
  void run();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sotto::aggregator
