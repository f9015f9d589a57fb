// Strategy: how the aggregator turns the round's client updates into the next global model.
//
// Updates are deltas (local minus global) weighted by the client's example count. A strategy accumulates them
// one at a time as they arrive — the aggregator never holds every client's update at once — and produces the new
// global model when the round closes. FedAvg lives in fedavg.h; server optimizers (FedAdam, FedYogi, FedAdagrad)
// plug in here with the same interface. Strategies see only ModelParameters: no LibTorch, no sockets.
//
// A strategy with memory across rounds (a server optimizer's moments) exposes it through save_state/load_state
// as named float64/int64 tensors, which the aggregator checkpoints beside the global model, so that a restarted
// aggregator continues exactly where it stopped.
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
  // Adds one update, which it may keep (so it takes it by value: callers move it in); its layout matches the
  // global model (the coordinator checked) and it is finite.
  virtual void accumulate(model::ModelParameters delta, std::uint64_t num_examples) = 0;
  // The round's only update (a secure round's survivors' mean): as accumulate, but a strategy may keep it as it is
  // instead of summing it, which saves memory.
  virtual void accumulate_sole(model::ModelParameters delta, std::uint64_t num_examples) {
    accumulate(std::move(delta), num_examples);
  }
  // The next global model. Requires at least one accumulated update.
  virtual model::ModelParameters finish_round(const model::ModelParameters& global) = 0;

  // State that must survive a restart; empty for stateless strategies.
  virtual model::ModelParameters save_state() const { return {}; }
  // Restores what save_state() returned, for a model laid out like `global`. Throws sotto::Error when it does not
  // fit (another strategy's state, another model).
  virtual void load_state(const model::ModelParameters& state, const model::ModelParameters& global);
};

}  // namespace sotto::aggregator
