// Config sections shared by sotto-aggregator and sotto-sim: [plan], [strategy] and [secure_aggregation] have the
// same keys, defaults, ranges and checks in both, so an experiment moves between the simulator and the daemon
// unchanged (sotto-sim's TLS transport writes the daemon's config from them). Readers fail naming the key;
// writers give the tables back with every key.
#pragma once

#include <toml++/toml.h>

#include "aggregator/round_coordinator.h"
#include "aggregator/strategy_factory.h"
#include "common/config/toml_reader.h"
#include "common/ml/training_plan.h"

namespace sotto::aggregator {

ml::TrainingPlan read_plan_section(config::TomlReader& r);
// Also checks the pairing with the plan: FedProx needs a positive plan.proximal_mu.
StrategyOptions read_strategy_section(config::TomlReader& r, const ml::TrainingPlan& plan);
// Every key but step_deadline_s, which only the daemon has (the simulator has no clock to miss).
SecureAggregationOptions read_secure_aggregation_section(config::TomlReader& r);

toml::table plan_table(const ml::TrainingPlan& plan);
toml::table strategy_table(const StrategyOptions& strategy);
// Without step_deadline_s (see above).
toml::table secure_aggregation_table(const SecureAggregationOptions& secure);

}  // namespace sotto::aggregator
