#include "simulations/tls_transport.h"

#include <unistd.h>

#include <toml++/toml.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "aggregator/config_sections.h"
#include "common/codec/model_file.h"
#include "common/crypto/random.h"
#include "common/data/image_dataset.h"
#include "common/util/child_process.h"
#include "common/util/error.h"
#include "common/util/json_lines.h"
#include "simulations/cohort_sampler.h"
#include "simulations/population.h"
#include "simulations/secure_round.h"

namespace sotto::sim {

namespace {

namespace fs = std::filesystem;
using WallClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr util::Seconds kProcessStart = 60s;
constexpr util::Seconds kClientRound = 3600s;  // one client's whole round, training included
constexpr std::size_t kLogTail = 4000;          // characters of a failed process's log quoted in the error

double since(WallClock::time_point t0) { return std::chrono::duration<double>(WallClock::now() - t0).count(); }

// Where sotto-sim's sibling binaries are: the directory of this executable.
fs::path binary_dir() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find this executable's directory (/proc/self/exe): " + ec.message());
  return self.parent_path();
}

fs::path require_binary(const std::string& name) {
  const fs::path path = binary_dir() / name;
  if (!fs::exists(path)) {
    throw Error("transport = \"tls\" runs " + path.string() + ", which does not exist: build it (cmake --build build)");
  }
  return path;
}

void write_toml(const fs::path& path, const toml::table& table, const std::string& header) {
  std::ofstream out(path);
  out << "# " << header << "\n" << table << "\n";
  if (!out) throw Error("cannot write " + path.string());
}

std::string hex_token() {
  std::uint8_t bytes[16];
  crypto::random_bytes(bytes);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (auto b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

// Each virtual client's own bearer token, bound to its id as a real deployment binds them (auth.client_tokens).
std::map<std::string, std::string> client_tokens(const SimConfig& c) {
  std::map<std::string, std::string> tokens;
  for (ClientIndex i = 0; i < c.population; ++i) tokens.emplace(Population::client_id(i), hex_token());
  return tokens;
}

toml::table aggregator_config(const SimConfig& c, const fs::path& pki, const fs::path& state,
                              const std::map<std::string, std::string>& tokens) {
  toml::table secure = aggregator::secure_aggregation_table(c.secure);
  secure.insert("step_deadline_s", 600);
  toml::table bound;
  for (const auto& [id, token] : tokens) bound.insert(id, token);
  toml::table config{
      {"server", toml::table{{"listen_address", "127.0.0.1"},
                             {"port", 0},
                             {"cert_file", (pki / "server.pem").string()},
                             {"key_file", (pki / "server.key").string()},
                             {"ca_file", (pki / "ca.pem").string()},
                             {"linger_s", 0.2},
                             // Every virtual client connects from 127.0.0.1, possibly all at once.
                             {"max_connections_per_address", 0},
                             {"max_unauthenticated_per_address", 0}}},
      {"auth", toml::table{{"mode", "token"}, {"client_tokens", bound}}},
      {"rounds", toml::table{{"total", static_cast<std::int64_t>(c.rounds)},
                             {"cohort_target", static_cast<std::int64_t>(c.cohort_size)},
                             // As in memory: a round goes on while this many clients can still contribute.
                             {"cohort_min", static_cast<std::int64_t>(std::min<std::uint32_t>(
                                                c.cohort_size, c.secure.enabled ? secagg::kMinClients : 1))},
                             {"checkin_window_s", 3600},
                             {"training_deadline_s", 3600},
                             {"seed", static_cast<std::int64_t>(c.seed)},
                             {"reproducible_aggregation", true}}},
      {"plan", aggregator::plan_table(c.plan)},
      {"privacy", aggregator::privacy_table(c.clip_norm, c.privacy)},
      {"strategy", aggregator::strategy_table(c.strategy)},
      {"secure_aggregation", secure},
      {"model", aggregator::model_table(c.model, c.init_seed)},
      {"evaluation", toml::table{{"enabled", true},
                                 {"data_dir", c.data_dir.string()},
                                 {"max_examples", static_cast<std::int64_t>(c.eval_max_examples)}}},
      {"state", toml::table{{"dir", state.string()}}},
      {"log", toml::table{{"level", "info"}}},
  };
  for (auto&& [key, value] : aggregator::weighting_table(c.weighting)) config["rounds"].as_table()->insert(key, value);
  return config;
}

// The client's fault_injection.vanish_after that makes it vanish where the in-memory engine's planned dropout
// (secure_round.h) has it vanish: instead of sending that step's message.
std::string vanish_after(std::optional<RoundStep> step, bool secure) {
  if (!step) return "";
  switch (*step) {
    case RoundStep::kAdvertiseKeys: return "task";
    case RoundStep::kShareKeys: return "advertise";
    case RoundStep::kUpdate: return secure ? "share_keys" : "task";
    case RoundStep::kUnmask: return "masked_input";
  }
  throw Error("internal: unknown round step " + std::to_string(static_cast<int>(*step)));
}

constexpr int kVanishedExitCode = 97;  // sotto-client's exit status after fault_injection.vanish_after

toml::table client_config(const SimConfig& c, const std::string& id, const fs::path& pki, std::uint16_t port,
                          const std::string& token, const fs::path& indices, const std::string& vanish) {
  toml::table t{
      {"client", toml::table{{"id", id}, {"max_rounds", 1}}},
      {"server", toml::table{{"host", "127.0.0.1"},
                             {"port", static_cast<std::int64_t>(port)},
                             {"server_name", "localhost"},
                             {"ca_file", (pki / "ca.pem").string()}}},
      {"auth", toml::table{{"token", token}}},
      {"connection", toml::table{{"give_up_after_s", 120}}},
      {"data", toml::table{{"dir", c.data_dir.string()}, {"indices_file", indices.string()}}},
      {"training", toml::table{{"threads", 1}}},
      // Each simulated person's opt-in, recorded explicitly: the client library sends nothing without it.
      {"consent", toml::table{{"grant", toml::array{"training"}}}},
      {"log", toml::table{{"level", "warn"}}},
  };
  // The device trains the aggregator's model; init_seed is the aggregator's alone.
  toml::table model = aggregator::model_table(c.model, c.init_seed);
  model.erase("init_seed");
  t.insert("model", std::move(model));
  if (!vanish.empty()) t.insert("fault_injection", toml::table{{"vanish_after", vanish}});
  return t;
}

}  // namespace

SimSummary run_simulation_over_tls(const SimConfig& config, const ProgressFn& progress,
                                   const std::function<void(const std::string&)>& warn) {
  const auto start = WallClock::now();
  const fs::path aggregator_bin = require_binary("sotto-aggregator");
  const fs::path client_bin = require_binary("sotto-client");
  RunOutputs outputs(config.output_dir, to_toml(config));
  const fs::path work = outputs.dir() / "tls";
  const fs::path pki = work / "pki", state = work / "aggregator-state", clients = work / "clients";
  fs::remove_all(work);
  fs::create_directories(clients);

  const data::ImageDataset train = data::load_fashion_mnist(config.data_dir, data::Split::kTrain);
  const Population population(config, train);
  data::write_partition_report(outputs.dir() / "partition.csv", population.shards(), train.labels);

  const fs::path make_certs = fs::path(SOTTO_SOURCE_DIR) / "scripts" / "make-certs.sh";
  const std::string certs = "bash '" + make_certs.string() + "' '" + pki.string() + "' 0 >'" +
                            (work / "make-certs.log").string() + "' 2>&1";
  if (std::system(certs.c_str()) != 0 || !fs::exists(pki / "server.pem")) {
    throw Error("making the loopback PKI failed (" + make_certs.string() + "); see " + (work / "make-certs.log").string());
  }
  const auto tokens = client_tokens(config);
  write_toml(work / "aggregator.toml", aggregator_config(config, pki, state, tokens),
             "sotto-sim --transport tls: the aggregator of this run");
  util::Process aggregator("sotto-aggregator",
                           {aggregator_bin.string(), "--config", (work / "aggregator.toml").string()},
                           work / "aggregator.log");
  const std::uint16_t port = util::wait_for_port(state, kProcessStart, &aggregator);

  SimSummary summary;
  std::uint64_t attempt = 0;
  std::uint64_t abandoned_streak = 0;
  while (summary.rounds < config.rounds) {
    const auto round_start = WallClock::now();
    const std::vector<ClientIndex> cohort = sample_cohort(config, ++attempt);  // attempt = the daemon's round id
    std::vector<std::unique_ptr<util::Process>> processes;
    std::vector<bool> vanishes;
    for (ClientIndex c : cohort) {
      const std::string id = Population::client_id(c);
      const fs::path indices = clients / (id + ".indices");
      if (!fs::exists(indices)) {
        std::ofstream out(indices);
        for (std::uint32_t i : population.examples(c)) out << i << '\n';
      }
      const fs::path cfg = clients / (id + ".toml");
      const std::string vanish =
          vanish_after(planned_dropout(config.dropout, config.secure.enabled, config.seed, attempt, c),
                       config.secure.enabled);
      vanishes.push_back(!vanish.empty());
      write_toml(cfg, client_config(config, id, pki, port, tokens.at(id), indices, vanish),
                 "sotto-sim --transport tls: client " + id);
      processes.push_back(std::make_unique<util::Process>(
          id, std::vector<std::string>{client_bin.string(), "--config", cfg.string()},
          clients / (id + "-round-" + std::to_string(attempt) + ".log")));
    }
    for (std::size_t i = 0; i < processes.size(); ++i) {
      auto& p = processes[i];
      const auto code = p->wait_for_exit(kClientRound);
      if (code != (vanishes[i] ? kVanishedExitCode : 0)) {
        throw Error("client " + p->name() + " " +
                    (code ? "exited with code " + std::to_string(*code) : std::string("did not finish its round")) +
                    " in round " + std::to_string(attempt) + "; its log (" + p->log_file().string() + "):\n" +
                    p->log_tail(kLogTail) + "\nthe aggregator's log: " + aggregator.log_file().string());
      }
    }
    // The daemon evaluates and logs the round after telling the clients its result.
    std::vector<nlohmann::json> lines;
    const bool logged = util::wait_until(
        [&] {
          lines = util::read_json_lines(state / "rounds.jsonl");
          return lines.size() >= attempt || !aggregator.running();
        },
        kClientRound);
    if (!logged || lines.size() < attempt) {
      throw Error("the aggregator did not log round " + std::to_string(attempt) + "; its log (" +
                  aggregator.log_file().string() + "):\n" + aggregator.log_tail(kLogTail));
    }
    nlohmann::json record = lines[attempt - 1];
    record["sampled"] = cohort.size();
    RoundRow row;
    row.round = record.value("round", std::uint64_t{0});
    row.completed_rounds = record.value("completed_rounds", std::uint64_t{0});
    row.test_accuracy = record.value("test_accuracy", 0.0);
    row.test_loss = record.value("test_loss", 0.0);
    row.mean_train_loss = record.value("mean_train_loss", 0.0);
    row.participants = record.value("survivors", 0u);
    row.cohort = record.value("cohort", 0u);
    row.bytes_up = record.value("bytes_in", std::uint64_t{0});
    row.bytes_down = record.value("bytes_out", std::uint64_t{0});
    const nlohmann::json seconds = record.value("seconds", nlohmann::json::object());
    row.seconds_sampling = seconds.value("checkin", 0.0);
    row.seconds_training = seconds.value("training", 0.0);
    row.seconds_aggregation = seconds.value("aggregation", 0.0);
    row.seconds_evaluation = seconds.value("evaluation", 0.0);
    row.seconds_round = since(round_start);
    outputs.record(record, row);
    summary.note_round(row);
    if (progress) progress(row, config.rounds, since(start));
    // An abandoned round (too many dropouts) is followed by another, as in memory.
    abandoned_streak = record.value("status", std::string()) == "completed" ? 0 : abandoned_streak + 1;
    if (abandoned_streak >= 100) {
      throw Error("100 rounds in a row were abandoned over TLS (last reason: " +
                  record.value("abandon_reason", std::string()) + "); see " + aggregator.log_file().string());
    }
  }
  const auto code = aggregator.wait_for_exit(kProcessStart);
  if (code != 0) {
    throw Error("the aggregator " + (code ? "exited with code " + std::to_string(*code) : std::string("did not stop")) +
                " after the last round; its log:\n" + aggregator.log_tail(kLogTail));
  }
  // The daemon's last checkpoint, as the model file the in-memory engine writes (without the round record a
  // checkpoint carries for crash recovery).
  codec::ModelFile final_model = codec::read_model_file(state / "checkpoint.sotto");
  final_model.round_record.clear();
  codec::write_model_file(outputs.dir() / "final_model.sotto", final_model);
  const std::uint64_t model_bytes = final_model.model.total_bytes();
  summary.total_seconds = since(start);
  finish_outputs(outputs, config, summary, {{"model_bytes", model_bytes}, {"ranks", 1}, {"transport", "tls"}}, warn);
  return summary;
}

}  // namespace sotto::sim
