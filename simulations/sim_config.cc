#include "simulations/sim_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <thread>

#include "aggregator/config_sections.h"
#include "common/model/personal_tensors.h"
#include "common/config/toml_reader.h"
#include "common/data/image_dataset.h"
#include "common/secagg/messages.h"
#include "common/ml/image_model.h"
#include "common/util/error.h"

namespace sotto::sim {

namespace {

const std::vector<std::string> kPartitions = {"iid", "dirichlet", "k_classes", "quantity_skew"};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// Applies one "key=value" onto the table; the value is TOML when it parses as one, else a plain string.
void apply_override(toml::table& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos) {
    throw Error("--set '" + assignment + "': expected key=value (e.g. --set plan.learning_rate=0.1)");
  }
  const std::string key = trim(assignment.substr(0, eq));
  const std::string value = trim(assignment.substr(eq + 1));
  if (key.empty() || key.front() == '.' || key.back() == '.' || key.find("..") != std::string::npos ||
      key.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != std::string::npos) {
    throw Error("--set '" + assignment + "': '" + key + "' is not a dotted key such as plan.learning_rate");
  }
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    parsed = toml::table{};
    parsed.insert_or_assign("v", value);
  }
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
  toml::table* table = &root;
  std::string walked;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    walked += (walked.empty() ? "" : ".") + parts[i];
    toml::node* n = table->get(parts[i]);
    if (!n) {
      table = table->emplace<toml::table>(parts[i]).first->second.as_table();
    } else if (n->is_table()) {
      table = n->as_table();
    } else {
      throw Error("--set '" + assignment + "': '" + walked + "' is a value in the config, not a table");
    }
  }
  parsed.get("v")->visit([&](const auto& node) { table->insert_or_assign(parts.back(), node); });
}

}  // namespace

double SimConfig::effective_sampling_rate() const {
  if (sampling_rate > 0) return sampling_rate;
  return static_cast<double>(cohort_size) / static_cast<double>(population);
}

std::string SimConfig::method() const {
  if (local_only) return "local only";
  std::ostringstream m;
  m << strategy.name;
  if (!plan.personal.empty()) m << " + personal [" << model::PersonalTensors(plan.personal).describe() << "]";
  if (plan.head_epochs > 0) m << ", FedRep head epochs " << plan.head_epochs;
  if (plan.finetune_epochs > 0) m << " + fine-tuning " << plan.finetune_epochs << " epoch(s)";
  if (plan.ditto_lambda > 0) m << " + Ditto lambda " << plan.ditto_lambda;
  return m.str();
}

bool SimConfig::personalizes() const {
  return local_only || local_fraction > 0 || !plan.personal.empty() || plan.adapts();
}

namespace {

// What personalization cannot be combined with here.
void check_personalization(config::TomlReader& r, const SimConfig& c) {
  if (c.local_only) {
    const ml::TrainingPlan& p = c.plan;
    if (!p.personal.empty() || p.adapts() || p.head_epochs > 0) {
      r.fail("personalization.local_only", "trains every client alone; it takes none of the other personalization "
                                           "keys (personal, finetune_epochs, ditto_lambda, head_epochs)");
    }
    if (c.secure.enabled || c.privacy.mode != aggregator::PrivacyMode::kOff || c.canaries.count > 0) {
      r.fail("personalization.local_only", "sends nothing: secure aggregation, privacy and canaries do not apply");
    }
    if (!(c.local_fraction > 0)) {
      r.fail("evaluation.local_fraction", "must be positive with personalization.local_only: the held-out examples "
                                          "are the only measure of local models");
    }
  }
  if (!c.plan.personal.empty() && !(c.local_fraction > 0)) {
    r.fail("evaluation.local_fraction", "must be positive with personalization.personal: the global model is not a "
                                        "whole model, so only the clients' held-out examples can measure the run");
  }
  if (!c.plan.personal.empty() && c.canaries.count > 0) {
    r.fail("canaries.count", "canaries measure the whole model's change; with personalization.personal the server "
                             "holds only part of it: run canaries without personal tensors");
  }
  if (c.local_only && (c.dropout.update > 0 || c.sampling == Sampling::kPoisson)) {
    r.fail("personalization.local_only", "is the baseline of uniform cohorts without dropouts (dropout.* and "
                                         "poisson sampling would not be matched in it)");
  }
  if (c.transport == Transport::kTls && c.personalizes()) {
    r.fail("transport", "\"tls\" starts a fresh client process per round, which keeps no personal state; "
                        "personalization runs on the in-memory transport (real daemons: tests/integration/"
                        "personalization_test.cc)");
  }
}

void read_canaries(config::TomlReader& r, SimConfig& c) {
  auto& k = c.canaries;
  k.count = static_cast<std::uint64_t>(r.get_int("canaries.count", 0, 0, 1'000'000));
  k.held_out = static_cast<std::uint64_t>(r.get_int("canaries.held_out", static_cast<std::int64_t>(k.count), 0,
                                                    1'000'000));
  k.seed = static_cast<std::uint64_t>(r.get_int("canaries.seed", 0, 0, INT64_MAX));
  if (k.count == 0) return;
  if (k.count < 2 || k.held_out < 2) {
    r.fail("canaries.count", "and canaries.held_out must be at least 2 each: the estimate fits a Gaussian to each");
  }
  if (!(c.clip_norm > 0)) {
    r.fail("canaries.count", "needs privacy.clip_norm > 0: a canary sends an update of exactly the clip norm");
  }
  if (c.transport == Transport::kTls) {
    r.fail("canaries.count", "works with the in-memory transport only (a canary is not a client process)");
  }
}

}  // namespace

SimConfig load_sim_config(const std::filesystem::path& config_file, const std::vector<std::string>& overrides,
                          const std::optional<std::filesystem::path>& output_dir) {
  toml::table root;
  std::string source = "<defaults>";
  std::filesystem::path base_dir = std::filesystem::current_path();
  if (!config_file.empty()) {
    if (!std::filesystem::exists(config_file)) throw Error("config file " + config_file.string() + " does not exist");
    source = config_file.string();
    base_dir = std::filesystem::absolute(config_file).parent_path();
    try {
      root = toml::parse_file(config_file.string());
    } catch (const toml::parse_error& e) {
      std::ostringstream s;
      s << config_file.string() << ":" << e.source().begin.line << ":" << e.source().begin.column
        << ": invalid TOML: " << e.description();
      throw Error(s.str());
    }
  }
  for (const auto& o : overrides) apply_override(root, o);
  if (!overrides.empty()) source += " (with --set)";
  std::ostringstream text;
  text << root;
  auto r = config::TomlReader::from_string(text.str(), source);

  SimConfig c;
  c.population = static_cast<std::uint64_t>(r.get_int("population", 100, 1, 100'000'000));
  c.cohort_size = static_cast<std::uint32_t>(r.get_int("cohort_size", 10, 1, 10'000'000));
  if (c.cohort_size > c.population) {
    r.fail("cohort_size", "is " + std::to_string(c.cohort_size) + ", larger than population (" +
                              std::to_string(c.population) + ")");
  }
  c.sampling = r.get_choice("sampling", {"uniform", "poisson"}, "uniform") == "poisson" ? Sampling::kPoisson
                                                                                      : Sampling::kUniform;
  c.sampling_rate = r.get_double("sampling_rate", 0, 0, 1);
  if (c.sampling == Sampling::kUniform && c.sampling_rate > 0) {
    r.fail("sampling_rate", "is set but sampling is \"uniform\"; set sampling = \"poisson\" or drop sampling_rate");
  }
  c.rounds = static_cast<std::uint64_t>(r.get_int("rounds", 10, 1, 1'000'000));
  c.seed = static_cast<std::uint64_t>(r.get_int("seed", 0, 0, INT64_MAX));
  c.threads = static_cast<std::uint32_t>(r.get_int("threads", 0, 0, 1024));
  c.plots = r.get_bool("plots", true);
  c.output_dir = r.get_string("output_dir", "sim-output");
  c.transport = r.get_choice("transport", {"memory", "tls"}, "memory") == "tls" ? Transport::kTls : Transport::kMemory;

  c.plan = aggregator::read_plan_section(r);
  aggregator::read_personalization_section(r, c.plan);
  c.local_only = r.get_bool("personalization.local_only", false);
  c.strategy = aggregator::read_strategy_section(r, c.plan);
  const auto& sa = c.secure = aggregator::read_secure_aggregation_section(r);
  c.clip_norm = aggregator::read_clip_norm(r, sa.enabled);
  const auto largest_cohort = static_cast<std::uint32_t>(std::min<std::uint64_t>(
      c.sampling == Sampling::kUniform ? c.cohort_size : c.population, std::numeric_limits<std::uint32_t>::max()));
  c.privacy = aggregator::read_privacy_section(r, sa.enabled, secagg::kMinClients, largest_cohort);
  aggregator::read_weighting(r, "aggregation", c.weighting);
  if (!sa.enabled && c.privacy.mode == aggregator::PrivacyMode::kLocal) {
    r.fail("privacy.mode", "\"local\" is simulated with secure aggregation only (secure_aggregation.enabled = "
                           "true): plain simulated clients send their updates without a device's own noise");
  }
  if (c.privacy.mode != aggregator::PrivacyMode::kOff && !(c.clip_norm > 0)) {
    r.fail("privacy.clip_norm", "must be positive with differential privacy: it bounds each user's influence");
  }
  if (sa.enabled && c.sampling == Sampling::kUniform && c.cohort_size < secagg::kMinClients) {
    r.fail("cohort_size", "is " + std::to_string(c.cohort_size) + "; secure aggregation needs at least " +
                              std::to_string(secagg::kMinClients) +
                              " clients per round (a sum of fewer reveals inputs)");
  }
  auto& d = c.dropout;
  d.update = r.get_double("dropout.update", 0, 0, 1);
  const std::pair<const char*, double*> secure_only[] = {{"dropout.advertise_keys", &d.advertise_keys},
                                                         {"dropout.share_keys", &d.share_keys},
                                                         {"dropout.unmask", &d.unmask}};
  for (const auto& [key, value] : secure_only) {
    *value = r.get_double(key, 0, 0, 1);
    if (*value > 0 && !sa.enabled) {
      r.fail(key, "is a secure-aggregation step, but secure_aggregation.enabled is false: set it to true, or use "
                  "dropout.update for plain rounds");
    }
  }

  read_canaries(r, c);
  if (c.transport == Transport::kTls) {
    constexpr std::uint32_t kMaxTlsCohort = 64;
    if (c.sampling != Sampling::kUniform) {
      r.fail("sampling", "must be \"uniform\" with transport = \"tls\" (a real check-in window cannot reproduce a "
                         "Poisson cohort); use the in-memory transport for Poisson sampling");
    }
    if (c.cohort_size > kMaxTlsCohort) {
      r.fail("cohort_size", "is " + std::to_string(c.cohort_size) + "; transport = \"tls\" starts one process per "
                                "sampled client and allows at most " + std::to_string(kMaxTlsCohort));
    }
    constexpr std::uint64_t kMaxTlsPopulation = 100'000;  // each client gets its own token in the daemon's config
    if (c.population > kMaxTlsPopulation) {
      r.fail("population", "is " + std::to_string(c.population) + "; transport = \"tls\" binds a token to every "
                               "client in the aggregator's config and allows at most " +
                               std::to_string(kMaxTlsPopulation) + "; use the in-memory transport for more");
    }
  }

  c.data_dir = r.get_string("data.dir", data::kDefaultFashionMnistDir);
  if (c.data_dir.is_relative()) c.data_dir = (base_dir / c.data_dir).lexically_normal();
  c.partition = r.get_choice("data.partition", kPartitions, "iid");
  c.alpha = r.get_double("data.alpha", 0.5, 1e-6, 1e6);
  c.classes_per_client = static_cast<std::uint32_t>(r.get_int("data.classes_per_client", 2, 1, 1000));
  c.sigma = r.get_double("data.sigma", 1.0, 0, 100);
  c.data_seed = static_cast<std::uint64_t>(r.get_int("data.seed", 0, 0, INT64_MAX));
  c.max_examples_per_client =
      static_cast<std::uint64_t>(r.get_int("data.max_examples_per_client", 0, 0, INT64_MAX));

  c.num_shards = static_cast<std::uint64_t>(r.get_int("data.num_shards", 0, 0, 100'000'000));
  c.eval_max_examples = static_cast<std::uint64_t>(r.get_int("evaluation.max_examples", 0, 0, INT64_MAX));
  c.local_fraction = r.get_double("evaluation.local_fraction", 0, 0, 0.5);
  check_personalization(r, c);

  c.model = ml::read_model_spec(r);
  c.init_seed = static_cast<std::uint64_t>(r.get_int("model.init_seed", 1, 0, INT64_MAX));
  r.reject_unknown_keys();

  if (output_dir) c.output_dir = *output_dir;
  c.output_dir = std::filesystem::absolute(c.output_dir).lexically_normal();
  if (c.threads == 0) c.threads = std::max(1u, std::thread::hardware_concurrency());
  if (c.sampling == Sampling::kPoisson && c.sampling_rate == 0) c.sampling_rate = c.effective_sampling_rate();
  return c;
}

std::string to_toml(const SimConfig& c) {
  toml::table t;
  t.insert("population", static_cast<std::int64_t>(c.population));
  t.insert("cohort_size", static_cast<std::int64_t>(c.cohort_size));
  t.insert("sampling", c.sampling == Sampling::kPoisson ? "poisson" : "uniform");
  if (c.sampling == Sampling::kPoisson) t.insert("sampling_rate", c.sampling_rate);
  t.insert("rounds", static_cast<std::int64_t>(c.rounds));
  t.insert("seed", static_cast<std::int64_t>(c.seed));
  t.insert("threads", static_cast<std::int64_t>(c.threads));
  t.insert("plots", c.plots);
  t.insert("output_dir", c.output_dir.string());
  t.insert("transport", c.transport == Transport::kTls ? "tls" : "memory");
  t.insert("plan", aggregator::plan_table(c.plan));
  toml::table personalization = aggregator::personalization_table(c.plan);
  personalization.insert("local_only", c.local_only);
  t.insert("personalization", std::move(personalization));
  t.insert("strategy", aggregator::strategy_table(c.strategy));
  t.insert("secure_aggregation", aggregator::secure_aggregation_table(c.secure));
  t.insert("privacy", aggregator::privacy_table(c.clip_norm, c.privacy));
  t.insert("aggregation", aggregator::weighting_table(c.weighting));
  t.insert("dropout", toml::table{{"advertise_keys", c.dropout.advertise_keys},
                                  {"share_keys", c.dropout.share_keys},
                                  {"update", c.dropout.update},
                                  {"unmask", c.dropout.unmask}});
  if (c.canaries.count > 0) {
    t.insert("canaries", toml::table{{"count", static_cast<std::int64_t>(c.canaries.count)},
                                     {"held_out", static_cast<std::int64_t>(c.canaries.held_out)},
                                     {"seed", static_cast<std::int64_t>(c.canaries.seed)}});
  }
  t.insert("data", toml::table{{"dir", c.data_dir.string()},
                               {"partition", c.partition},
                               {"alpha", c.alpha},
                               {"classes_per_client", static_cast<std::int64_t>(c.classes_per_client)},
                               {"sigma", c.sigma},
                               {"seed", static_cast<std::int64_t>(c.data_seed)},
                               {"max_examples_per_client", static_cast<std::int64_t>(c.max_examples_per_client)},
                               {"num_shards", static_cast<std::int64_t>(c.num_shards)}});
  t.insert("evaluation", toml::table{{"max_examples", static_cast<std::int64_t>(c.eval_max_examples)},
                                     {"local_fraction", c.local_fraction}});
  t.insert("model", aggregator::model_table(c.model, c.init_seed));
  std::ostringstream s;
  s << "# sotto-sim: the resolved configuration of this run (every key, defaults included).\n" << t << "\n";
  return s.str();
}

std::string documented_keys() {
  return R"(Config keys (TOML; every key has a default; override any with --set key=value):
  population = 100              registered virtual clients
  cohort_size = 10              clients per round (uniform), expected clients per round (poisson)
  sampling = "uniform"          "uniform" (fixed-size, without replacement) or "poisson" (each client independently)
  sampling_rate = 0             poisson: per-client probability per round (0 = cohort_size / population)
  rounds = 10                   completed rounds to run
  seed = 0                      cohort sampling and training shuffles
  threads = 0                   training workers (0 = all cores); results do not depend on it
  plots = true                  draw accuracy.png and loss.png with gnuplot (skipped with a warning if absent)
  output_dir = "sim-output"     relative to the current directory; --output overrides
  transport = "memory"          "memory" (in-process) or "tls" (a real sotto-aggregator and one sotto-client process
                                per sampled client over TLS on 127.0.0.1; uniform sampling, no dropouts, cohort <= 64)
  [plan]      epochs = 1, batch_size = 32, optimizer = "sgd" | "adam", learning_rate = 0.05, momentum = 0.9,
              weight_decay = 0, proximal_mu = 0 (FedProx's mu)
  [strategy]  name = "fedavg" | "fedprox" | "fedadam" | "fedyogi" | "fedadagrad", server_learning_rate, beta1,
              beta2, tau (server optimizers only)
  [privacy]   clip_norm: the L2 bound every update is clipped to (0 = none, the default in plain rounds; 30 with
              secure aggregation, which needs one); mode = "distributed" (the default with secure aggregation
              once noise_multiplier or target_epsilon is set) | "central" | "local" | "off", noise_multiplier,
              delta = 1e-5, target_epsilon (a budget on the models' epsilon), min_survivors: as the daemon's.
              With sampling = "poisson" the epsilon against the released models is amplified by the sampling
              rate (every draw charged, those too small to run included); the one against the aggregator is
              not, nor is either in "local" mode (each client's own update is what it bounds).
              adaptive_clipping = false, target_unclipped_quantile = 0.5, clip_learning_rate = 0.2,
              clipped_count_stddev (0: expected clients / 20): the clip norm follows the quantile (not in "local")
  [aggregation] weighting = "examples" | "uniform" (each client equally), max_examples_per_client = 100000 (the
              most examples an update weighs in with)
  [secure_aggregation] enabled = false, dropout_rate = 0.1 and
              corruption_rate = 0.05 (the assumptions k and t are chosen for), complete_graph = false (true: the
              original SecAgg, k = n - 1), neighbours = 0 and threshold = 0 (0 = chosen from the rates), bits = 32
              (the modulus 2^bits, 8..32: fewer bits, smaller uploads, coarser quantization)
  [canaries]  count = 0 (clients that send clip_norm times a fixed random direction instead of training,
              sampled like the others), held_out = count (directions never sent), seed = 0: summary.json's
              "canaries" then holds an empirical epsilon (Andrew et al. 2024) beside the accountant's
  [dropout]   probability that a sampled client vanishes instead of sending: update = 0 (its update, or masked
              input), and in secure rounds advertise_keys = 0, share_keys = 0, unmask = 0
  [data]      dir = "/usr/share/datasets/fashion-mnist", partition = "iid" | "dirichlet" | "k_classes" |
              "quantity_skew", alpha = 0.5 (dirichlet), classes_per_client = 2 (k_classes), sigma = 1.0
              (quantity_skew), seed = 0, max_examples_per_client = 0 (0 = all of its partition), num_shards = 0
              (0 = min(population, 60000); fewer shards than clients: client c holds shard c mod num_shards)
  [personalization] personal = [] (glob patterns of tensors each client keeps: FedPer, FedRep, FedBN),
              head_epochs = 0 (FedRep: personal head epochs first), finetune_epochs = 0 (fine-tune a copy of the
              global model after each round), ditto_lambda = 0 (Ditto's personal model), local_only = false (no
              federation: each client trains its own model; the baseline)
  [evaluation] max_examples = 0 (0 = the whole test set), local_fraction = 0 (each client's held-out part: the
              global against the personal model per round trained, and for every client after the last round)
  [model]     architecture = "fashion_cnn" | "fashion_linear" | "fashion_wide_mlp", or torchscript = "FILE" (a
              module saved with torch.jit.script; models/README.md), init_seed = 1 (built-in models)
)";
}

}  // namespace sotto::sim
