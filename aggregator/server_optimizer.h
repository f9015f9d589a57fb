// Server optimizers: FedAdagrad, FedAdam and FedYogi (Reddi et al., "Adaptive Federated Optimization", ICLR 2021,
// Algorithm 2).
//
// Each round the clients' example-weighted mean delta Δ (WeightedMeanDelta, exactly what FedAvg would add to the
// model) is treated as a pseudo-gradient, and the server takes one adaptive step with it:
//
//   m_t = β1 m_{t-1} + (1 - β1) Δ                                   (first moment, m_{-1} = 0)
//   v_t = v_{t-1} + Δ²                                              FedAdagrad
//   v_t = β2 v_{t-1} + (1 - β2) Δ²                                  FedAdam
//   v_t = v_{t-1} - (1 - β2) Δ² sign(v_{t-1} - Δ²)                  FedYogi
//   x_{t+1} = x_t + η m_t / (sqrt(v_t) + τ)                         (v_{-1} = τ², elementwise)
//
// No bias correction, as in the paper. The moments persist across rounds inside the strategy object (a round that
// is abandoned leaves them untouched); they are held in double precision, one pair per element of every floating
// tensor. Only float32/float64 tensors get the optimizer step, computed in double and rounded to the tensor's type
// once; integer tensors (BatchNorm's num_batches_tracked) take FedAvg's rounded mean delta. The moments are not
// checkpointed: a restarted aggregator begins again from m = 0, v = τ².
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aggregator/strategy.h"
#include "aggregator/weighted_mean.h"

namespace sotto::aggregator {

// Defaults. β1 = 0.9 and β2 = 0.99 are the moment decay rates Reddi et al. use in their experiments (and Flower's
// FedAdam/FedYogi defaults). τ = 1e-3 controls the adaptivity (the step is ~η for coordinates with |Δ| >> τ and
// ~η|Δ|/τ below it); it is in the middle of the range the paper tunes over and is Flower's default for all three.
// η = 0.01 = 10^-2 is inside the range of best server learning rates the paper reports for its adaptive
// optimizers (roughly 10^-2.5 .. 10^0, task-dependent) and is Flower's FedYogi default; tune it per task.
inline constexpr double kDefaultServerLearningRate = 0.01;
inline constexpr double kDefaultBeta1 = 0.9;
inline constexpr double kDefaultBeta2 = 0.99;
inline constexpr double kDefaultTau = 1e-3;

struct ServerOptimizerOptions {
  double learning_rate = kDefaultServerLearningRate;  // η > 0
  double beta1 = kDefaultBeta1;                       // in [0, 1)
  double beta2 = kDefaultBeta2;                       // in [0, 1); FedAdagrad does not use it
  double tau = kDefaultTau;                           // > 0
};

enum class ServerOptimizerKind { kAdagrad, kAdam, kYogi };

class ServerOptimizer : public Strategy {
 public:
  // Throws sotto::Error naming the bad option (η, β1, β2, τ out of range or not finite).
  ServerOptimizer(ServerOptimizerKind kind, ServerOptimizerOptions options);

  std::string name() const final;  // "fedadagrad", "fedadam" or "fedyogi"
  void begin_round(const model::ModelParameters& global) final;
  void accumulate(model::ModelParameters delta, std::uint64_t num_examples) final;
  void accumulate_sole(model::ModelParameters delta, std::uint64_t num_examples) final;
  model::ModelParameters finish_round(const model::ModelParameters& global) final;
  // "steps" (int64 scalar), then "m.<tensor>" and "v.<tensor>" (float64, flat) for every optimized tensor.
  model::ModelParameters save_state() const final;
  void load_state(const model::ModelParameters& state, const model::ModelParameters& global) final;

  const ServerOptimizerOptions& options() const { return options_; }
  // Rounds finished so far (optimizer steps taken).
  std::uint64_t steps() const { return steps_; }

 private:
  void init_or_check_state(const model::ModelParameters& global);

  ServerOptimizerKind kind_;
  ServerOptimizerOptions options_;
  WeightedMeanDelta mean_;
  // Per tensor, per element; empty for integer tensors. Empty altogether until the first finish_round().
  std::vector<std::vector<double>> m_, v_;
  std::vector<std::string> names_;  // the tensor names m_ and v_ were built for
  std::uint64_t steps_ = 0;
};

class FedAdagrad final : public ServerOptimizer {
 public:
  explicit FedAdagrad(ServerOptimizerOptions options = {}) : ServerOptimizer(ServerOptimizerKind::kAdagrad, options) {}
};

class FedAdam final : public ServerOptimizer {
 public:
  explicit FedAdam(ServerOptimizerOptions options = {}) : ServerOptimizer(ServerOptimizerKind::kAdam, options) {}
};

class FedYogi final : public ServerOptimizer {
 public:
  explicit FedYogi(ServerOptimizerOptions options = {}) : ServerOptimizer(ServerOptimizerKind::kYogi, options) {}
};

}  // namespace sotto::aggregator
