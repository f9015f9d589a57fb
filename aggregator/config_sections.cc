#include "aggregator/config_sections.h"

#include <spdlog/spdlog.h>

#include <limits>

#include "common/model/personal_tensors.h"
#include "common/round/messages.h"
#include "common/secagg/messages.h"
#include "common/util/error.h"

namespace sotto::aggregator {

ml::TrainingPlan read_plan_section(config::TomlReader& r) {
  ml::TrainingPlan p;
  p.epochs = static_cast<std::uint32_t>(r.get_int("plan.epochs", 1, 1, 1000));
  p.batch_size = static_cast<std::uint32_t>(r.get_int("plan.batch_size", 32, 1, 65536));
  p.optimizer = r.get_choice("plan.optimizer", {"sgd", "adam"}, "sgd");
  p.learning_rate = r.get_double("plan.learning_rate", 0.05, 1e-9, 100);
  p.momentum = r.get_double("plan.momentum", 0.9, 0, 0.999999);
  p.weight_decay = r.get_double("plan.weight_decay", 0, 0, 1);
  p.proximal_mu = r.get_double("plan.proximal_mu", 0, 0, 1e6);
  return p;
}

StrategyOptions read_strategy_section(config::TomlReader& r, const ml::TrainingPlan& plan) {
  StrategyOptions s;
  s.name = r.get_choice("strategy.name", known_strategies(), "fedavg");
  s.server_learning_rate = r.get_double("strategy.server_learning_rate", kDefaultServerLearningRate, 1e-12, 1e6);
  s.beta1 = r.get_double("strategy.beta1", kDefaultBeta1, 0, 0.999999);
  s.beta2 = r.get_double("strategy.beta2", kDefaultBeta2, 0, 0.999999);
  s.tau = r.get_double("strategy.tau", kDefaultTau, 1e-12, 1e6);
  if (s.name == "fedprox" && plan.proximal_mu == 0) {
    r.fail("plan.proximal_mu",
           "is 0 but strategy.name is \"fedprox\", which needs a positive proximal term: set "
           "plan.proximal_mu (e.g. 0.01 to 1), or use strategy.name = \"fedavg\"");
  }
  return s;
}

SecureAggregationOptions read_secure_aggregation_section(config::TomlReader& r) {
  SecureAggregationOptions sa;
  sa.enabled = r.get_bool("secure_aggregation.enabled", false);
  sa.dropout_rate = r.get_double("secure_aggregation.dropout_rate", 0.1, 0, 0.99);
  sa.corruption_rate = r.get_double("secure_aggregation.corruption_rate", 0.05, 0, 0.99);
  sa.complete_graph = r.get_bool("secure_aggregation.complete_graph", false);
  sa.neighbours = static_cast<std::uint32_t>(r.get_int("secure_aggregation.neighbours", 0, 0, 1'000'000));
  sa.threshold = static_cast<std::uint32_t>(r.get_int("secure_aggregation.threshold", 0, 0, 1'000'000));
  sa.bits = static_cast<std::uint32_t>(r.get_int("secure_aggregation.bits", 32, 8, 32));
  if (sa.neighbours % 2 == 1) r.fail("secure_aggregation.neighbours", "must be even (a Harary graph), or 0 for auto");
  return sa;
}

double read_clip_norm(config::TomlReader& r, bool secure_aggregation) {
  const char* kOld = "secure_aggregation.clip_norm";
  if (r.has(kOld) && r.has("privacy.clip_norm")) {
    r.fail(kOld, "is set alongside privacy.clip_norm, which replaces it: keep only privacy.clip_norm");
  }
  double clip = 0;
  if (r.has(kOld)) {
    clip = r.get_double(kOld, std::nullopt, 1e-9, 1e12);
    spdlog::warn("{}: secure_aggregation.clip_norm is deprecated: move it to [privacy] clip_norm, the one clip norm "
                 "of a round, plain or secure",
                 r.source());
  } else {
    clip = r.get_double("privacy.clip_norm", secure_aggregation ? kDefaultSecureClipNorm : 0.0, 0, 1e12);
  }
  if (secure_aggregation && !(clip > 0)) {
    r.fail("privacy.clip_norm", "must be positive with secure aggregation: it bounds what each client adds to the sum");
  }
  return clip;
}

void read_weighting(config::TomlReader& r, const std::string& table, CoordinatorOptions& o) {
  o.max_examples_per_client = static_cast<std::uint64_t>(
      r.get_int(table + ".max_examples_per_client", 100'000, 1, std::numeric_limits<std::int64_t>::max()));
  o.weighting = r.get_choice(table + ".weighting", {"examples", "uniform"}, "examples") == "uniform"
                    ? Weighting::kUniform
                    : Weighting::kExamples;
}

toml::table weighting_table(const CoordinatorOptions& o) {
  return toml::table{{"max_examples_per_client", static_cast<std::int64_t>(o.max_examples_per_client)},
                     {"weighting", o.weighting == Weighting::kUniform ? "uniform" : "examples"}};
}

const char* privacy_mode_name(PrivacyMode mode) {
  switch (mode) {
    case PrivacyMode::kDistributed: return "distributed";
    case PrivacyMode::kCentral: return "central";
    case PrivacyMode::kLocal: return "local";
    case PrivacyMode::kOff: break;
  }
  return "off";
}

namespace {

// [privacy] adaptive_clipping and its settings (dp/adaptive_clipping.h): only where the clipped-count bits are summed
// under the round's own noise — inside a noised secure sum, or in the trusted aggregator's central sum.
void read_adaptive_clipping(config::TomlReader& r, PrivacyOptions& p) {
  auto& a = p.adaptive_clipping;
  a.enabled = r.get_bool("privacy.adaptive_clipping", false);
  a.target_quantile = r.get_double("privacy.target_unclipped_quantile", 0.5, 0.01, 0.99);
  a.learning_rate = r.get_double("privacy.clip_learning_rate", 0.2, 1e-6, 10);
  a.count_stddev = r.get_double("privacy.clipped_count_stddev", 0.0, 0, 1e9);
  if (!a.enabled) return;
  if (p.mode == PrivacyMode::kOff || p.mode == PrivacyMode::kLocal) {
    r.fail("privacy.adaptive_clipping", "needs privacy.mode \"distributed\" (with secure aggregation) or \"central\": "
                                        "the clipped-count bits are summed under the round's noise, which local DP "
                                        "puts on each update alone");
  }
}

}  // namespace

PrivacyOptions read_privacy_section(config::TomlReader& r, bool secure, std::uint32_t default_min_survivors,
                                    std::uint32_t max_min_survivors) {
  PrivacyOptions p;
  const bool noise_given = r.has("privacy.noise_multiplier") || r.has("privacy.target_epsilon");
  const std::string mode = r.get_choice("privacy.mode", round::privacy_mode_names(),
                                        secure && noise_given ? "distributed" : "off");
  p.mode = mode == "distributed" ? PrivacyMode::kDistributed
           : mode == "central"   ? PrivacyMode::kCentral
           : mode == "local"     ? PrivacyMode::kLocal
                                 : PrivacyMode::kOff;
  p.noise_multiplier = r.get_double("privacy.noise_multiplier", 0.0, 0, 1e4);
  p.target_epsilon = r.get_double("privacy.target_epsilon", 0.0, 0, 1e6);
  p.delta = r.get_double("privacy.delta", 1e-5, 1e-30, 0.5);
  p.min_survivors = static_cast<std::uint32_t>(
      r.get_int("privacy.min_survivors", default_min_survivors, secagg::kMinClients, 1'000'000));
  read_adaptive_clipping(r, p);
  if (p.mode == PrivacyMode::kOff) {
    if (secure) {
      spdlog::warn("{}: secure aggregation without differential privacy: the sum is exact, so the released model "
                   "carries no noise; set privacy.noise_multiplier or privacy.target_epsilon for distributed DP",
                   r.source());
    }
    return p;
  }
  const std::string quoted = "\"" + mode + "\"";
  if (!secure && p.mode == PrivacyMode::kDistributed) {
    r.fail("privacy.mode", quoted + " needs secure_aggregation.enabled = true (each client's noise share protects "
                                    "only inside a secure sum); plain rounds take \"central\" or \"local\"");
  }
  if (!(p.noise_multiplier > 0) && !(p.target_epsilon > 0)) {
    r.fail("privacy.noise_multiplier", "must be positive for " + quoted + ", or set privacy.target_epsilon");
  }
  if (p.min_survivors > max_min_survivors) {
    r.fail("privacy.min_survivors", "is larger than the cohort (" + std::to_string(max_min_survivors) + ")");
  }
  return p;
}

toml::table privacy_table(double clip_norm, const PrivacyOptions& p) {
  toml::table t{{"clip_norm", clip_norm}};
  if (p.mode == PrivacyMode::kOff) return t;
  t.insert("mode", privacy_mode_name(p.mode));
  if (p.noise_multiplier > 0) t.insert("noise_multiplier", p.noise_multiplier);
  if (p.target_epsilon > 0) t.insert("target_epsilon", p.target_epsilon);
  t.insert("delta", p.delta);
  t.insert("min_survivors", static_cast<std::int64_t>(p.min_survivors));
  if (p.adaptive_clipping.enabled) {
    t.insert("adaptive_clipping", true);
    t.insert("target_unclipped_quantile", p.adaptive_clipping.target_quantile);
    t.insert("clip_learning_rate", p.adaptive_clipping.learning_rate);
    if (p.adaptive_clipping.count_stddev > 0) t.insert("clipped_count_stddev", p.adaptive_clipping.count_stddev);
  }
  return t;
}

toml::table model_table(const ml::ModelSpec& model, std::uint64_t init_seed) {
  toml::table t{{"init_seed", static_cast<std::int64_t>(init_seed)}};
  if (model.torchscript.empty()) {
    t.insert("architecture", model.architecture);
  } else {
    t.insert("torchscript", model.torchscript.string());
  }
  return t;
}

void read_personalization_section(config::TomlReader& r, ml::TrainingPlan& plan) {
  try {
    plan.personal = model::PersonalTensors(r.get_strings("personalization.personal")).patterns();
  } catch (const Error& e) {
    r.fail("personalization.personal", e.what());
  }
  plan.finetune_epochs = static_cast<std::uint32_t>(r.get_int("personalization.finetune_epochs", 0, 0, 1000));
  plan.ditto_lambda = r.get_double("personalization.ditto_lambda", 0, 0, 1e6);
  plan.head_epochs = static_cast<std::uint32_t>(r.get_int("personalization.head_epochs", 0, 0, 1000));
  if (plan.finetune_epochs > 0 && plan.ditto_lambda > 0) {
    r.fail("personalization.ditto_lambda", "and personalization.finetune_epochs are both set; a device keeps one "
                                           "personal model: choose fine-tuning or Ditto");
  }
  if (plan.head_epochs > 0 && plan.personal.empty()) {
    r.fail("personalization.head_epochs", "needs personalization.personal: FedRep trains the personal head first");
  }
}

toml::table plan_table(const ml::TrainingPlan& p) {
  return toml::table{{"epochs", static_cast<std::int64_t>(p.epochs)},
                     {"batch_size", static_cast<std::int64_t>(p.batch_size)},
                     {"optimizer", p.optimizer},
                     {"learning_rate", p.learning_rate},
                     {"momentum", p.momentum},
                     {"weight_decay", p.weight_decay},
                     {"proximal_mu", p.proximal_mu}};
}

toml::table personalization_table(const ml::TrainingPlan& p) {
  toml::array personal;
  for (const auto& pattern : p.personal) personal.push_back(pattern);
  return toml::table{{"personal", personal},
                     {"finetune_epochs", static_cast<std::int64_t>(p.finetune_epochs)},
                     {"ditto_lambda", p.ditto_lambda},
                     {"head_epochs", static_cast<std::int64_t>(p.head_epochs)}};
}

toml::table strategy_table(const StrategyOptions& s) {
  return toml::table{{"name", s.name},
                     {"server_learning_rate", s.server_learning_rate},
                     {"beta1", s.beta1},
                     {"beta2", s.beta2},
                     {"tau", s.tau}};
}

toml::table secure_aggregation_table(const SecureAggregationOptions& sa) {
  return toml::table{{"enabled", sa.enabled},
                     {"dropout_rate", sa.dropout_rate},
                     {"corruption_rate", sa.corruption_rate},
                     {"complete_graph", sa.complete_graph},
                     {"neighbours", static_cast<std::int64_t>(sa.neighbours)},
                     {"threshold", static_cast<std::int64_t>(sa.threshold)},
                     {"bits", static_cast<std::int64_t>(sa.bits)}};
}

}  // namespace sotto::aggregator
