// Strategy: how the aggregator turns the round's client updates into the next global model.
//
// Updates are deltas (local minus global) weighted by the client's example count. A strategy accumulates them
// one at a time as they arrive — the aggregator never holds every client's update at once — and produces the new
// global model when the round closes. FedAvg lives in fedavg.h; server optimizers (FedAdam, FedYogi, FedAdagrad)
// plug in here with the same interface. Strategies see only ModelParameters: no LibTorch, no sockets.
#pragma once

#include <cstdint>
#include <string>

#include "common/model/parameters.h"

namespace sotto::aggregator {

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;
  // Forgets any partial sum and prepares to accumulate updates shaped like `global`.
  virtual void begin_round(const model::ModelParameters& global) = 0;
  // Adds one update; its layout matches the global model (the coordinator checked) and it is finite.
  virtual void accumulate(const model::ModelParameters& delta, std::uint64_t num_examples) = 0;
  // The next global model. Requires at least one accumulated update.
  virtual model::ModelParameters finish_round(const model::ModelParameters& global) = 0;
};

}  // namespace sotto::aggregator
