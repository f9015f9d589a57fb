// SimConfig: everything one sotto-sim run needs — population, cohort sampling, rounds, the training plan, the
// strategy, the data partition, evaluation, model and output — read from TOML with every key defaulted.
//
// load_sim_config() reads an optional TOML file, applies `--set key=value` overrides onto it (the value parsed as
// TOML, or taken as a string when it does not parse: `--set data.partition=dirichlet` works unquoted), then reads
// every key through config::TomlReader, so an unknown key or a bad value is rejected naming the key.
// to_toml() writes the resolved config back out (output_dir/config.toml), so a run can be repeated exactly.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "aggregator/round_coordinator.h"
#include "aggregator/strategy_factory.h"
#include "common/ml/model_spec.h"
#include "common/ml/training_plan.h"

namespace sotto::sim {

enum class Sampling { kUniform, kPoisson };
enum class Transport { kMemory, kTls };  // tls_transport.h

// Simulated dropouts: the probability that a sampled client vanishes instead of sending each message of a round,
// decided independently per client, round and message from the run's seed. `update` applies to every round (the
// plain update, or a secure round's masked input); the other three are the secure rounds' key advertisement, key
// shares and unmasking response.
struct DropoutRates {
  double advertise_keys = 0;
  double share_keys = 0;
  double update = 0;
  double unmask = 0;
};

// [canaries]: clients that send a fixed random direction instead of training, for an empirical epsilon
// (simulations/canaries.h). count = 0: none.
struct CanaryOptions {
  std::uint64_t count = 0;     // inserted: sampled like every client, indices population .. population + count - 1
  std::uint64_t held_out = 0;  // directions drawn but never sent (the null distribution)
  std::uint64_t seed = 0;
};

struct SimConfig {
  std::uint64_t population = 100;  // registered virtual clients
  std::uint32_t cohort_size = 10;  // uniform: clients per round; poisson: expected clients per round
  Sampling sampling = Sampling::kUniform;
  double sampling_rate = 0;  // poisson: each client joins a round with this probability (0 = cohort/population)
  std::uint64_t rounds = 10;
  std::uint64_t seed = 0;  // cohort sampling and training shuffles
  std::uint32_t threads = 0;  // training workers; 0 = all cores
  bool plots = true;          // accuracy.png / loss.png via gnuplot
  std::filesystem::path output_dir = "sim-output";
  Transport transport = Transport::kMemory;

  ml::TrainingPlan plan;
  aggregator::StrategyOptions strategy;
  aggregator::SecureAggregationOptions secure;  // secure_aggregation.*, the daemon's keys
  double clip_norm = 0;                          // privacy.clip_norm, as the daemon's
  aggregator::PrivacyOptions privacy;            // privacy.mode and the rest, as the daemon's
  aggregator::CoordinatorOptions weighting;      // [aggregation]: only its max_examples_per_client and weighting
  DropoutRates dropout;
  CanaryOptions canaries;

  std::filesystem::path data_dir = "/usr/share/datasets/fashion-mnist";
  std::string partition = "iid";  // iid | dirichlet | k_classes | quantity_skew
  double alpha = 0.5;             // dirichlet
  std::uint32_t classes_per_client = 2;  // k_classes
  double sigma = 1.0;             // quantity_skew
  std::uint64_t data_seed = 0;
  std::uint64_t max_examples_per_client = 0;  // 0 = all of its partition
  std::uint64_t num_shards = 0;  // partition into this many shards, client c holds shard c mod num_shards (0 = auto)

  std::uint64_t eval_max_examples = 0;  // 0 = the whole test set
  // evaluation.local_fraction: the part of each client's examples it holds out, on which it measures the global
  // model against its personal one in every round it trains and once more, every client, after the last round.
  double local_fraction = 0;
  // personalization.local_only: the baseline without federation — each sampled client trains its own model from
  // where it left it, on its own examples, and nothing is sent. The plan's personalization keys are in `plan`.
  bool local_only = false;

  ml::ModelSpec model;
  std::uint64_t init_seed = 1;

  // The per-round Poisson probability actually used.
  double effective_sampling_rate() const;
  // Whether clients keep anything between rounds or measure themselves: personal tensors, local adaptation, a local
  // test split, or the local-only baseline.
  bool personalizes() const;
  // "fedavg", "fedavg + personal [fc2.*], FedRep head epochs 2", "local only", ... — for titles.
  std::string method() const;
  // Everyone the cohorts are drawn from: the population and the inserted canaries.
  std::uint64_t sampled_clients() const { return population + canaries.count; }
};

// `config_file` may be empty (all defaults). `overrides` are "key=value" strings. `output_dir`, when given,
// replaces output_dir. Relative data.dir resolves against the config file's directory; relative output_dir
// against the current directory. Throws sotto::Error naming the key (or the bad --set) on any problem.
SimConfig load_sim_config(const std::filesystem::path& config_file, const std::vector<std::string>& overrides = {},
                          const std::optional<std::filesystem::path>& output_dir = std::nullopt);

// The resolved config as TOML text, every key present.
std::string to_toml(const SimConfig& config);

// The keys and their defaults, one per line, for --help.
std::string documented_keys();

}  // namespace sotto::sim
