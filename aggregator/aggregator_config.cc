#include "aggregator/aggregator_config.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "aggregator/authenticator.h"
#include "aggregator/config_sections.h"
#include "common/config/toml_reader.h"
#include "common/dp/integer_sum.h"
#include "common/ml/accuracy_histogram.h"
#include "common/ml/model_spec.h"
#include "common/secagg/messages.h"
#include "common/util/error.h"

namespace sotto::aggregator {

namespace {

// The [server] caps on connections; 0 lifts one.
ConnectionLimits read_connection_limits(config::TomlReader& r) {
  ConnectionLimits l;
  auto cap = [&](const std::string& key, std::size_t fallback) {
    return static_cast<std::size_t>(r.get_int(key, static_cast<std::int64_t>(fallback), 0, 10'000'000));
  };
  l.max_connections = cap("server.max_connections", l.max_connections);
  l.max_connections_per_address = cap("server.max_connections_per_address", l.max_connections_per_address);
  l.max_unauthenticated = cap("server.max_unauthenticated", l.max_unauthenticated);
  l.max_unauthenticated_per_address =
      cap("server.max_unauthenticated_per_address", l.max_unauthenticated_per_address);
  return l;
}

void read_server_section(config::TomlReader& r, AggregatorConfig& c) {
  c.listen_address = r.get_string("server.listen_address", c.listen_address);
  c.port = static_cast<std::uint16_t>(r.get_int("server.port", c.port, 0, 65535));
  c.cert_file = r.get_path("server.cert_file", std::nullopt);
  c.key_file = r.get_path("server.key_file", std::nullopt);
  c.ca_file = r.get_path("server.ca_file", std::nullopt);
  c.crl_file = r.get_path("server.crl_file", std::filesystem::path());
  c.max_frame_bytes = static_cast<std::size_t>(r.get_int("server.max_frame_bytes", 8 << 20, 4096, 1 << 30));
  c.chunk_bytes = static_cast<std::size_t>(r.get_int("server.chunk_bytes", 1 << 20, 1024, 1 << 30));
  c.max_upload_assembly_bytes = static_cast<std::size_t>(r.get_int(
      "server.max_upload_assembly_bytes", static_cast<std::int64_t>(c.max_upload_assembly_bytes), 0, INT64_MAX));
  if (c.chunk_bytes + 1024 > c.max_frame_bytes) {
    r.fail("server.chunk_bytes",
           "must be at least 1 KiB smaller than server.max_frame_bytes (" + std::to_string(c.max_frame_bytes) + ")");
  }
  c.max_hello_bytes = static_cast<std::size_t>(r.get_int("server.max_hello_bytes", 4096, 256, 1 << 20));
  if (c.max_hello_bytes > c.max_frame_bytes) {
    r.fail("server.max_hello_bytes", "must not be larger than server.max_frame_bytes (" +
                                         std::to_string(c.max_frame_bytes) + ")");
  }
  c.connection_limits = read_connection_limits(r);
  c.handshake_timeout = r.get_seconds("server.handshake_timeout_s", 10, 0.001, 3600);
  c.hello_timeout = r.get_seconds("server.hello_timeout_s", 10, 0.001, 3600);
  c.linger = r.get_seconds("server.linger_s", 3, 0.001, 3600);
}

void read_auth_section(config::TomlReader& r, AggregatorConfig& c) {
  const std::string mode = r.get_choice("auth.mode", {"mtls", "token", "mtls_or_token"}, "mtls_or_token");
  c.auth_mode = mode == "mtls"    ? AuthMode::kMutualTls
                : mode == "token" ? AuthMode::kToken
                                  : AuthMode::kMutualTlsOrToken;
  if (r.has("auth.tokens")) {
    r.fail("auth.tokens", "(tokens valid for any client id) is no longer accepted: one such token let its holder "
                          "fill a cohort with invented clients. Bind each token to the client ids it may present, "
                          "under [auth.client_tokens] as lines client_id = \"token\"");
  }
  c.client_tokens = r.get_string_map("auth.client_tokens");
  for (const auto& [id, token] : c.client_tokens) {
    if (!valid_client_id(id)) {
      r.fail("auth.client_tokens." + id, "is not a valid client id (1-128 letters, digits, '-', '_', '.', ':')");
    }
    if (token.size() < 16) {
      r.fail("auth.client_tokens." + id, "is shorter than 16 characters; use long random tokens");
    }
  }
  if (c.auth_mode == AuthMode::kToken && c.client_tokens.empty()) {
    r.fail("auth.client_tokens", "is empty but auth.mode is \"token\": bind at least one client id to a token");
  }
}

void read_rounds_section(config::TomlReader& r, CoordinatorOptions& o) {
  o.total_rounds = static_cast<std::uint64_t>(r.get_int("rounds.total", 5, 1, 1'000'000'000));
  o.cohort_target = static_cast<std::uint32_t>(r.get_int("rounds.cohort_target", 8, 1, 1'000'000));
  o.cohort_min = static_cast<std::uint32_t>(r.get_int("rounds.cohort_min", 1, 1, 1'000'000));
  if (o.cohort_min > o.cohort_target) {
    r.fail("rounds.cohort_min", "is larger than rounds.cohort_target (" + std::to_string(o.cohort_target) + ")");
  }
  o.checkin_window = r.get_seconds("rounds.checkin_window_s", 30, 0.001, 86400);
  o.training_deadline = r.get_seconds("rounds.training_deadline_s", 600, 0.001, 86400);
  o.retry_delay = r.get_seconds("rounds.retry_delay_s", 5, 0.001, 86400);
  o.seed = static_cast<std::uint64_t>(r.get_int("rounds.seed", 0, 0, INT64_MAX));
  o.reproducible_aggregation = r.get_bool("rounds.reproducible_aggregation", false);
  o.max_consecutive_abandoned =
      static_cast<std::uint32_t>(r.get_int("rounds.max_consecutive_abandoned", 10, 0, 1'000'000));
  o.exclude_after_offences =
      static_cast<std::uint32_t>(r.get_int("rounds.exclude_after_offences", 0, 0, 1'000'000));
  read_weighting(r, "rounds", o);
}

// [evaluation] local_histogram_bins: the devices' held-out accuracies through the secure sum, as histograms.
void read_accuracy_histogram(config::TomlReader& r, CoordinatorOptions& o) {
  const char* key = "evaluation.local_histogram_bins";
  const char* noise_key = "evaluation.histogram_noise_multiplier";
  o.evaluation_bins = static_cast<std::uint32_t>(r.get_int(key, 0, 0, ml::kMaxAccuracyBins));
  if (r.has(noise_key) && (o.evaluation_bins == 0 || o.privacy.mode == PrivacyMode::kOff)) {
    r.fail(noise_key, "applies only to evaluation.local_histogram_bins under privacy.mode = \"distributed\"");
  }
  if (o.evaluation_bins == 0) return;
  if (!o.secure.enabled) r.fail(key, "needs secure_aggregation.enabled = true (it is a secure sum)");
  if (o.secure_sum_length > 0) r.fail(key, "applies only to training rounds, not task.kind = \"secure_sum\"");
  if (o.privacy.mode == PrivacyMode::kOff) return;
  if (o.privacy.mode != PrivacyMode::kDistributed) {
    r.fail(key, "is available under privacy.mode = \"distributed\" only (the devices' noise shares go on the "
                "histograms too), not \"" + std::string(privacy_mode_name(o.privacy.mode)) + "\"");
  }
  if (!r.has(noise_key)) {
    r.fail(noise_key, "is required with evaluation.local_histogram_bins under DP: the histograms' own noise "
                      "multiplier (against their L2 sensitivity sqrt(2)), charged with the update's");
  }
  o.privacy.histogram_noise_multiplier = r.get_double(noise_key, 1.0, 0.1, 1e4);
  // The smallest share a round will ask of a device (the most honest survivors counted on) must be one the exact
  // sampler draws: refused here rather than at every round.
  const std::uint32_t honest = std::min(o.privacy.min_survivors, o.cohort_target);
  try {
    dp::choose_accuracy_histogram_parameters(o.evaluation_bins, o.privacy.histogram_noise_multiplier,
                                             std::max(o.cohort_target, honest), std::max(honest, 1u), o.secure.bits,
                                             o.privacy.stddevs_in_range);
  } catch (const Error& e) {
    r.fail(noise_key, e.what());
  }
}

// [secure_aggregation], [privacy] and [task]: how a round's updates are protected and what the round computes.
void read_round_protection(config::TomlReader& r, CoordinatorOptions& o) {
  auto& sa = o.secure;
  sa = read_secure_aggregation_section(r);
  sa.step_deadline = r.get_seconds("secure_aggregation.step_deadline_s", 30, 0.001, 86400);
  o.clip_norm = read_clip_norm(r, sa.enabled);
  if (sa.enabled && o.cohort_min < secagg::kMinClients) {
    r.fail("rounds.cohort_min", "must be at least " + std::to_string(secagg::kMinClients) +
                                    " with secure aggregation (a sum of fewer would reveal inputs)");
  }
  const std::string kind = r.get_choice("task.kind", {"train", "secure_sum"}, "train");
  const auto sum_length = static_cast<std::uint64_t>(r.get_int("task.secure_sum_length", 0, 0, 1 << 28));
  if (kind == "secure_sum") {
    if (sum_length == 0) r.fail("task.secure_sum_length", "is required (1 or more) for task.kind = \"secure_sum\"");
    if (!sa.enabled) r.fail("secure_aggregation.enabled", "must be true for task.kind = \"secure_sum\"");
    o.secure_sum_length = sum_length;
    o.secure_sum_bound.linf = static_cast<std::uint64_t>(r.get_int("task.secure_sum_linf_bound", 0, 0, 1ll << 31));
    o.secure_sum_bound.l1 = static_cast<std::uint64_t>(r.get_int("task.secure_sum_l1_bound", 0, 0, 1ll << 40));
  } else if (sum_length != 0) {
    r.fail("task.secure_sum_length", "applies only to task.kind = \"secure_sum\"");
  }
  for (const char* key : {"task.secure_sum_linf_bound", "task.secure_sum_l1_bound"}) {
    if (kind != "secure_sum" && r.has(key)) r.fail(key, "applies only to task.kind = \"secure_sum\"");
  }
  o.privacy = read_privacy_section(r, sa.enabled, std::max<std::uint32_t>(o.cohort_min, secagg::kMinClients),
                                   o.cohort_target);
  if (o.privacy.mode != PrivacyMode::kOff && !(o.clip_norm > 0) && o.secure_sum_length == 0) {
    r.fail("privacy.clip_norm", "must be positive under privacy.mode = \"" +
                                    std::string(privacy_mode_name(o.privacy.mode)) +
                                    "\": it bounds each user's influence, which the noise is scaled to");
  }
  if (o.privacy.mode != PrivacyMode::kOff && o.secure_sum_length > 0 && !o.secure_sum_bound.bounded()) {
    r.fail("task.secure_sum_linf_bound", "or task.secure_sum_l1_bound is required with privacy.mode = \"" +
                                             std::string(privacy_mode_name(o.privacy.mode)) +
                                             "\": each contribution's bound is the noise's sensitivity");
  }
  read_accuracy_histogram(r, o);
}


void read_http_section(config::TomlReader& r, AggregatorConfig::Http& h) {
  h.enabled = r.get_bool("http.enabled", false);
  h.listen_address = r.get_string("http.listen_address", h.listen_address);
  h.port = static_cast<std::uint16_t>(r.get_int("http.port", h.port, 0, 65535));
  h.bearer_token = r.get_string("http.bearer_token", "");
  h.tls = r.get_bool("http.tls", false);
  if (!h.bearer_token.empty() && h.bearer_token.size() < 16) {
    r.fail("http.bearer_token", "is shorter than 16 characters; use a long random token");
  }
}

}  // namespace

AggregatorConfig load_aggregator_config(const std::filesystem::path& path) {
  auto r = config::TomlReader::from_file(path);
  return read_aggregator_config(r);
}

AggregatorConfig read_aggregator_config(config::TomlReader& r) {
  AggregatorConfig c;
  read_server_section(r, c);
  read_auth_section(r, c);
  read_rounds_section(r, c.rounds);
  c.rounds.plan = read_plan_section(r);
  read_round_protection(r, c.rounds);

  c.model = ml::read_model_spec(r);
  read_personalization_section(r, c.rounds.plan);
  c.init_seed = static_cast<std::uint64_t>(r.get_int("model.init_seed", 1, 0, INT64_MAX));
  c.strategy = read_strategy_section(r, c.rounds.plan);

  c.evaluate = r.get_bool("evaluation.enabled", true);
  c.eval_data_dir = r.get_path("evaluation.data_dir", c.eval_data_dir);
  c.eval_max_examples = static_cast<std::size_t>(r.get_int("evaluation.max_examples", 0, 0, INT64_MAX));

  c.state_dir = r.get_path("state.dir", c.state_dir);
  c.keep_round_models = r.get_bool("state.keep_round_models", false);
  c.log_level = r.get_choice("log.level", {"trace", "debug", "info", "warn", "error", "critical", "off"}, "info");
  read_http_section(r, c.http);
  r.reject_unknown_keys();
  return c;
}

}  // namespace sotto::aggregator
