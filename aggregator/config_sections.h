// Config sections shared by sotto-aggregator and sotto-sim: [plan], [personalization], [strategy],
// [secure_aggregation], [privacy] and the rounds' weighting keys have the same keys, defaults, ranges and checks in both, so an experiment moves between the simulator and the daemon
// unchanged (sotto-sim's TLS transport writes the daemon's config from them). Readers fail naming the key;
// writers give the tables back with every key.
#pragma once

#include <toml++/toml.h>

#include "aggregator/round_coordinator.h"
#include "aggregator/strategy_factory.h"
#include "common/config/toml_reader.h"
#include "common/ml/model_spec.h"
#include "common/ml/training_plan.h"

namespace sotto::aggregator {

ml::TrainingPlan read_plan_section(config::TomlReader& r);
// [personalization] into the plan: the personal tensors (glob patterns) and the local adaptation asked of the
// devices (finetune_epochs, ditto_lambda, head_epochs), with their pairing checks.
void read_personalization_section(config::TomlReader& r, ml::TrainingPlan& plan);
// Also checks the pairing with the plan: FedProx needs a positive plan.proximal_mu.
StrategyOptions read_strategy_section(config::TomlReader& r, const ml::TrainingPlan& plan);
// Every key but step_deadline_s, which only the daemon has (the simulator has no clock to miss).
SecureAggregationOptions read_secure_aggregation_section(config::TomlReader& r);

// privacy.clip_norm: the round's one L2 bound on updates (plain and secure rounds; the privacy issue's noise is
// calibrated to it). Defaults to 0 (none) in plain rounds and kDefaultSecureClipNorm with secure aggregation, which
// needs one. The former secure_aggregation.clip_norm is still read, with a deprecation warning.
double read_clip_norm(config::TomlReader& r, bool secure_aggregation);
// <table>.max_examples_per_client and <table>.weighting ("examples" or "uniform") into `options`: the daemon's
// [rounds], the simulator's [aggregation] (its `rounds` is the round count).
void read_weighting(config::TomlReader& r, const std::string& table, CoordinatorOptions& options);
toml::table weighting_table(const CoordinatorOptions& options);

// [privacy]'s mechanism and budget (mode, noise_multiplier, delta, target_epsilon, min_survivors), for the daemon
// and sotto-sim alike. Distributed DP is the default with secure aggregation once a noise level (or a budget to
// derive it from) is given; secure aggregation without noise is allowed, with a warning. `default_min_survivors`
// and `max_min_survivors` (the largest cohort) bound privacy.min_survivors.
PrivacyOptions read_privacy_section(config::TomlReader& r, bool secure_aggregation, std::uint32_t default_min_survivors,
                                    std::uint32_t max_min_survivors);

toml::table plan_table(const ml::TrainingPlan& plan);
toml::table personalization_table(const ml::TrainingPlan& plan);
// [model]: the model's architecture or TorchScript file, and the initial weights' seed.
toml::table model_table(const ml::ModelSpec& model, std::uint64_t init_seed);
toml::table privacy_table(double clip_norm, const PrivacyOptions& privacy);
toml::table strategy_table(const StrategyOptions& strategy);
// Without step_deadline_s (see above).
toml::table secure_aggregation_table(const SecureAggregationOptions& secure);

}  // namespace sotto::aggregator
