#include "aggregator/strategy_factory.h"

#include "aggregator/fedavg.h"
#include "common/util/error.h"

namespace sotto::aggregator {

std::vector<std::string> known_strategies() {
  return {"fedavg", "fedprox", "fedadam", "fedyogi", "fedadagrad"};
}

std::unique_ptr<Strategy> make_strategy(const StrategyOptions& options) {
  const std::string& name = options.name;
  if (name == "fedavg" || name == "fedprox") return std::make_unique<FedAvg>(name);
  const ServerOptimizerOptions o{options.server_learning_rate, options.beta1, options.beta2, options.tau};
  if (name == "fedadam") return std::make_unique<FedAdam>(o);
  if (name == "fedyogi") return std::make_unique<FedYogi>(o);
  if (name == "fedadagrad") return std::make_unique<FedAdagrad>(o);
  std::string known;
  for (const auto& k : known_strategies()) known += (known.empty() ? "" : ", ") + k;
  throw Error("unknown aggregation strategy '" + name + "'; known strategies: " + known);
}

}  // namespace sotto::aggregator
