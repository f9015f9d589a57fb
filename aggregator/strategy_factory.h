// Strategy factory: builds the aggregation strategy named in the config (`strategy.name`), for the daemon and
// the research runner alike.
//
// Names: "fedavg" (FedAvg); "fedprox" (FedProx, Li et al. 2020 — the proximal term is in the clients' training,
// set through TrainingPlan::proximal_mu; the server side is FedAvg); "fedadam", "fedyogi", "fedadagrad" (the
// server optimizers of Reddi et al. 2021, server_optimizer.h, which use server_learning_rate, beta1, beta2, tau;
// FedAvg and FedProx ignore those four).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "aggregator/server_optimizer.h"
#include "aggregator/strategy.h"

namespace sotto::aggregator {

struct StrategyOptions {
  std::string name = "fedavg";
  double server_learning_rate = kDefaultServerLearningRate;  // η
  double beta1 = kDefaultBeta1;
  double beta2 = kDefaultBeta2;
  double tau = kDefaultTau;
};

// The names make_strategy() accepts, in the order the docs list them.
std::vector<std::string> known_strategies();

// Throws sotto::Error for an unknown name (listing the known ones) or a bad optimizer hyper-parameter.
std::unique_ptr<Strategy> make_strategy(const StrategyOptions& options);

}  // namespace sotto::aggregator
