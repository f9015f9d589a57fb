#include "client/client_config.h"

#include <limits>

#include "common/config/toml_reader.h"
#include "common/round/messages.h"
#include "client/consent.h"
#include "client/kept_generation.h"
#include "common/util/error.h"

namespace sotto::client {

SottoClientConfig load_sotto_client_config(const std::filesystem::path& path) {
  auto r = config::TomlReader::from_file(path);
  return read_sotto_client_config(r);
}

SottoClientConfig read_sotto_client_config(config::TomlReader& r) {
  SottoClientConfig s;
  ClientConfig& c = s.client;
  c.client_id = r.get_string("client.id", std::nullopt);
  if (c.client_id.empty() || c.client_id.size() > 128) r.fail("client.id", "must be 1-128 characters");

  c.host = r.get_string("server.host", c.host);
  c.port = static_cast<std::uint16_t>(r.get_int("server.port", c.port, 1, 65535));
  c.server_name = r.get_string("server.server_name", c.server_name);
  c.ca_file = r.get_path("server.ca_file", std::nullopt);
  c.max_frame_bytes = static_cast<std::size_t>(r.get_int("server.max_frame_bytes", 8 << 20, 4096, 1 << 30));
  c.chunk_bytes = static_cast<std::size_t>(r.get_int("server.chunk_bytes", 1 << 20, 1024, 1 << 30));
  if (c.chunk_bytes + 1024 > c.max_frame_bytes) {
    r.fail("server.chunk_bytes", "must be at least 1 KiB smaller than server.max_frame_bytes");
  }

  c.cert_file = r.get_path("auth.cert_file", std::filesystem::path());
  c.key_file = r.get_path("auth.key_file", std::filesystem::path());
  if (c.cert_file.empty() != c.key_file.empty()) {
    r.fail(c.cert_file.empty() ? "auth.cert_file" : "auth.key_file", "must be given together with its pair");
  }
  c.auth_token = r.get_string("auth.token", "");
  if (c.cert_file.empty() && c.auth_token.empty()) {
    r.fail("auth", "needs cert_file + key_file (mutual TLS) or token");
  }

  c.connect_timeout = r.get_seconds("connection.connect_timeout_s", 10, 0.01, 1e7);
  c.io_timeout = r.get_seconds("connection.io_timeout_s", 60, 0.01, 1e7);
  c.wait_timeout = r.get_seconds("connection.wait_timeout_s", 3600, 0.01, 1e7);
  c.backoff_initial = r.get_seconds("connection.backoff_initial_s", 0.5, 0.001, 1e7);
  c.backoff_max = r.get_seconds("connection.backoff_max_s", 30, 0.001, 1e7);
  c.give_up_after = r.get_seconds("connection.give_up_after_s", 0, 0, 1e7);
  c.eligibility_poll = r.get_seconds("connection.eligibility_poll_s", 5, 0.01, 86400);

  s.data_dir = r.get_path("data.dir", s.data_dir);
  s.num_shards = static_cast<std::uint32_t>(r.get_int("data.num_shards", 1, 1, 1'000'000));
  s.shard_index = static_cast<std::uint32_t>(r.get_int("data.shard_index", 0, 0, 1'000'000));
  if (s.shard_index >= s.num_shards) {
    r.fail("data.shard_index", "is " + std::to_string(s.shard_index) + " but must be below data.num_shards (" +
                                   std::to_string(s.num_shards) + "); shards count from 0");
  }
  s.partition = r.get_choice("data.partition", {"iid", "dirichlet"}, "iid") == "iid" ? Partitioning::kIid
                                                                                     : Partitioning::kDirichlet;
  s.dirichlet_alpha = r.get_double("data.alpha", 0.5, 1e-6, 1e6);
  s.partition_seed = static_cast<std::uint64_t>(r.get_int("data.seed", 42, 0, INT64_MAX));
  s.max_examples = static_cast<std::size_t>(r.get_int("data.max_examples", 0, 0, INT64_MAX));
  s.local_fraction = r.get_double("evaluation.local_fraction", 0, 0, 0.5);
  s.indices_file = r.get_path("data.indices_file", std::filesystem::path());
  if (!s.indices_file.empty() && !std::filesystem::exists(s.indices_file)) {
    r.fail("data.indices_file", "names " + s.indices_file.string() + ", which does not exist");
  }

  c.limits.training_threads = static_cast<int>(r.get_int("training.threads", 1, 1, 256));
  c.limits.round_wall_time = r.get_seconds("limits.round_wall_time_s", 0, 0, 1e7);
  c.limits.max_update_bytes = static_cast<std::uint64_t>(r.get_int("limits.max_update_bytes", 0, 0, INT64_MAX));
  c.limits.bytes_per_day = static_cast<std::uint64_t>(r.get_int("limits.bytes_per_day", 0, 0, INT64_MAX));
  s.model = ml::read_model_spec(r);
  c.state_dir = r.get_path("state.dir", std::filesystem::path());
  c.save_local_models = r.get_bool("state.save_local_models", false);
  c.audit_sent_frames_file = r.get_path("audit.sent_frames_file", std::filesystem::path());
  s.state_key_file = r.get_path("state.key_file", std::filesystem::path());
  s.state_generation_file = r.get_path("state.generation_file", std::filesystem::path());
  if (s.state_generation_file.empty() && !s.state_key_file.empty()) {
    s.state_generation_file = default_kept_generation_file(s.state_key_file);
  }
  if (r.has("consent.grant")) {
    s.consent_grant = consent_scope_from_names(r.get_choices("consent.grant", {"training", "analytics"}));
  }
  c.max_rounds = static_cast<std::uint64_t>(r.get_int("client.max_rounds", 0, 0, INT64_MAX));
  c.claim_examples = static_cast<std::uint64_t>(
      r.get_int("fault_injection.claim_examples", 0, 0, std::numeric_limits<std::int64_t>::max()));
  c.scale_update = r.get_double("fault_injection.scale_update", 1.0, -1e12, 1e12);
  c.garble_shares = static_cast<std::uint32_t>(r.get_int("fault_injection.garble_shares", 0, 0, 1'000'000));
  try {
    c.personal = model::PersonalTensors(r.get_strings("personalization.personal"));
  } catch (const Error& e) {
    r.fail("personalization.personal", e.what());
  }
  constexpr const char* kReportLocal = "evaluation.report_local";
  if (r.is_string(kReportLocal)) {  // "secure_sum": only in a secure round's accuracy histogram
    if (r.get_string(kReportLocal) != "secure_sum") r.fail(kReportLocal, "must be true, false or \"secure_sum\"");
    c.report_local_in_secure_sum = true;
  } else if (r.has(kReportLocal)) {
    try {
      c.report_local_evaluation = r.get_bool(kReportLocal, false);
    } catch (const Error&) {
      r.fail(kReportLocal, "must be true, false or \"secure_sum\"");
    }
  }
  auto& p = c.privacy;
  p.require_noise = r.get_bool("privacy.require_noise", false);
  p.min_noise_multiplier = r.get_double("privacy.min_noise_multiplier", 0.0, 0, 1e4);
  p.max_clip_norm = r.get_double("privacy.max_clip_norm", 0.0, 0, 1e12);
  p.assumed_corruption_rate = r.get_double("privacy.assumed_corruption_rate", 0.05, 0, 0.99);
  p.max_epsilon = r.get_double("privacy.max_epsilon", 0.0, 0, 1e9);
  p.delta = r.get_double("privacy.delta", 1e-5, 1e-30, 0.5);
  p.accepted_modes = r.get_choices("privacy.accepted_modes", round::privacy_mode_names());
  c.vanish_after = r.get_choice("fault_injection.vanish_after", {"", "task", "advertise", "share_keys", "masked_input"}, "");
  if (c.save_local_models && c.state_dir.empty()) r.fail("state.save_local_models", "needs state.dir");
  s.log_level = r.get_choice("log.level", {"trace", "debug", "info", "warn", "error", "critical", "off"}, "info");
  r.reject_unknown_keys();
  return s;
}

}  // namespace sotto::client
