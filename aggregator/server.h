// AggregatorServer: the daemon's network side — TLS 1.3 listener, one coroutine per connection on a
// single-threaded Boost.Asio io_context, frames in and out — around a RoundCoordinator that owns every decision.
//
// The server authenticates clients (mutual TLS or bearer token), enforces the handshake and hello timeouts and the
// frame size limit, reassembles streamed updates, and turns the coordinator's actions into frames. When a round
// closes it checkpoints the global model atomically before the next round's tasks go out, evaluates the model on a
// worker thread (so the event loop never blocks on LibTorch), and appends the round's line to rounds.jsonl. On
// start it resumes from <state_dir>/checkpoint.sotto when present. SIGINT/SIGTERM stop it cleanly.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "aggregator/aggregator_config.h"
#include "common/ml/training_plan.h"
#include "common/model/parameters.h"

namespace sotto::aggregator {

// Evaluates a global model on the test set; called on a worker thread.
using Evaluator = std::function<ml::EvalMetrics(const model::ModelParameters&)>;
// Builds the initial global model when there is no checkpoint.
using ModelFactory = std::function<model::ModelParameters()>;

class AggregatorServer {
 public:
  AggregatorServer(AggregatorConfig config, ModelFactory initial_model, Evaluator evaluator);
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
