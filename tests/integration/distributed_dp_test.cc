// Distributed DP end to end: the real sotto-aggregator and sotto-client processes over mutual TLS with secure
// aggregation and privacy.mode = "distributed". The clients noise their own updates; the aggregator accounts every
// round, debits it durably before unmasking, states the epsilon spent in rounds.jsonl (reproduced here by
// sotto-dp), and stops when the next round would overspend privacy.target_epsilon — also across a SIGKILL and a
// restart, which continues the accounting instead of resetting it. The same through "central" (the aggregator adds
// the noise) and "local" (every client adds all of it, and the epsilon is that of its own update).
#include <signal.h>

#include <catch2/catch.hpp>

#include "tests/support/test_support.h"

namespace sotto::test {
namespace {

constexpr int kClients = 4;
constexpr double kNoise = 2.0;
constexpr double kClip = 1.0;
constexpr int kBits = 16;
constexpr std::uint64_t kDimension = 80'394;  // fashion_cnn's floating-point parameters

nlohmann::json sotto_dp_epsilon(std::uint64_t steps, const fs::path& dir, int honest = 2, int bits = kBits,
                                std::uint64_t dimension = kDimension) {
  std::vector<std::string> argv{bin_path("sotto-dp").string(), "epsilon", "--mechanism", "ddg",
                                "--sampling-rate", "1", "--noise-multiplier", std::to_string(kNoise),
                                "--steps", std::to_string(steps), "--delta", "1e-5",
                                "--bits", std::to_string(bits), "--clip-norm", std::to_string(kClip),
                                "--clients", std::to_string(kClients), "--honest", std::to_string(honest),
                                "--dimension", std::to_string(dimension)};
  const fs::path log = dir / ("sotto-dp-" + std::to_string(steps) + ".log");
  Process p("sotto-dp", argv, log);
  REQUIRE(p.wait_for_exit(60s) == 0);
  const std::string text = p.log_text();
  return nlohmann::json::parse(text.substr(text.rfind('{')));
}

struct DpRun {
  TempDir dir{"ddp"};
  Pki pki = make_pki(dir / "pki", kClients);
  AggregatorOptions agg;
  fs::path config;

  explicit DpRun(double target_epsilon, const std::string& mode = "distributed", std::uint64_t rounds = 6,
                 bool secure = true, const std::string& privacy_toml = "") {
    agg.state_dir = dir / "aggregator";
    agg.pki = pki;
    agg.port = pick_free_port();
    agg.total_rounds = rounds;
    agg.cohort_target = kClients;
    agg.cohort_min = 3;
    agg.extra_toml = (secure ? "[secure_aggregation]\nenabled = true\nstep_deadline_s = 20\nbits = " +
                                   std::to_string(kBits) + "\n"
                             : std::string()) +
                     "[privacy]\nmode = \"" + mode + "\"\nclip_norm = " + std::to_string(kClip) +
                     "\nnoise_multiplier = " + std::to_string(kNoise) + "\ndelta = 1e-5\nmin_survivors = 3\n" +
                     (target_epsilon > 0 ? "target_epsilon = " + std::to_string(target_epsilon) + "\n" : "") +
                     privacy_toml;
    config = write_aggregator_config(dir / "aggregator.toml", agg);
  }

  std::vector<std::unique_ptr<Process>> start_clients(const std::string& tag, const std::string& client_toml = "") {
    std::vector<std::unique_ptr<Process>> clients;
    for (int i = 1; i <= kClients; ++i) {
      ClientOptions c = mtls_client_options(pki, i, agg.port);
      c.num_shards = kClients;
      c.shard_index = static_cast<std::uint32_t>(i - 1);
      c.max_examples = 200;
      c.state_dir = dir / (c.id + tag);
      c.extra_toml = client_toml;
      clients.push_back(start_client(c.id, write_client_config(dir / (c.id + tag + ".toml"), c),
                                     dir / (c.id + tag + ".log")));
    }
    return clients;
  }

  // Runs the aggregator and the clients (with `client_toml` appended to their configs) until all exit; the rounds.
  std::vector<nlohmann::json> run_to_end(const std::string& client_toml = "") {
    auto aggregator = start_aggregator(config, dir / "aggregator.log");
    REQUIRE(wait_for_port(agg.state_dir, 60s, aggregator.get()) == agg.port);
    auto clients = start_clients("", client_toml);
    for (auto& c : clients) {
      INFO(c->name() << " log:\n" << c->log_text());
      REQUIRE(c->wait_for_exit(150s) == 0);
    }
    INFO("aggregator log:\n" << aggregator->log_text());
    REQUIRE(aggregator->wait_for_exit(60s) == 0);
    return read_jsonl(agg.state_dir / "rounds.jsonl");
  }
};

}  // namespace

TEST_CASE("distributed DP: each round's epsilon is debited before unmasking and the run stops at its budget, across a SIGKILL",
          "[integration][dp][secagg]") {
  // The budget allows three rounds of this mechanism and not four.
  const double eps3 = sotto_dp_epsilon(3, fs::temp_directory_path()).at("epsilon");
  const double eps4 = sotto_dp_epsilon(4, fs::temp_directory_path()).at("epsilon");
  REQUIRE(eps3 < eps4);
  DpRun run((eps3 + eps4) / 2);
  const fs::path rounds_file = run.agg.state_dir / "rounds.jsonl";
  const fs::path journal = run.agg.state_dir / "privacy.jsonl";

  auto aggregator = start_aggregator(run.config, run.dir / "aggregator.log");
  REQUIRE(wait_for_port(run.agg.state_dir, 60s, aggregator.get()) == run.agg.port);
  auto clients = run.start_clients("");
  // SIGKILL once round 2 is logged; the restart must remember the two rounds' privacy.
  REQUIRE(wait_until([&] { return read_jsonl(rounds_file).size() >= 2; }, 150s, 5ms));
  aggregator->kill(SIGKILL);
  REQUIRE(aggregator->wait_for_exit(10s) == 128 + SIGKILL);
  const auto charged_before_restart = read_jsonl(journal).size();
  CHECK(charged_before_restart >= 2);
  fs::remove(run.agg.state_dir / "port");
  aggregator = start_aggregator(run.config, run.dir / "aggregator-2.log");
  REQUIRE(wait_for_port(run.agg.state_dir, 60s, aggregator.get()) == run.agg.port);
  for (auto& c : clients) {
    INFO(c->name() << " log:\n" << c->log_text());
    REQUIRE(c->wait_for_exit(150s) == 0);
  }
  INFO("aggregator log:\n" << aggregator->log_text());
  REQUIRE(aggregator->wait_for_exit(60s) == 0);
  CHECK(aggregator->log_contains("privacy budget"));
  CHECK(aggregator->log_contains("over privacy.target_epsilon"));

  const auto rounds = read_jsonl(rounds_file);
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  const auto charges = read_jsonl(journal);
  REQUIRE(charges.size() == 3);  // the budget held 3 rounds: each charged once, none after
  std::uint64_t completed = 0;
  for (std::size_t r = 0; r < rounds.size(); ++r) {
    const auto& line = rounds[r];
    CHECK(line.at("schema_version") == 5);
    const auto& p = line.at("privacy");
    CHECK(p.at("mode") == "distributed");
    CHECK(p.at("charged") == true);
    CHECK(p.at("honest") == 2);  // min_survivors 3, less ceil(0.05 · 3) colluders
    CHECK(p.at("sampling").get<std::string>().find("q = 1") != std::string::npos);
    completed += line.at("status") == "completed" ? 1 : 0;
    // Every epsilon is sotto-dp's for the rounds charged so far.
    const double expected = sotto_dp_epsilon(line.at("round"), run.dir.path()).at("epsilon");
    CHECK(p.at("epsilon").get<double>() == Approx(expected).epsilon(1e-9));
  }
  CHECK(completed == 3);
  CHECK(rounds.back().at("privacy").at("epsilon").get<double>() <= (eps3 + eps4) / 2);

  // A third start finds the budget spent: it stops at once, charging nothing.
  fs::remove(run.agg.state_dir / "port");
  auto third = start_aggregator(run.config, run.dir / "aggregator-3.log");
  INFO("third aggregator log:\n" << third->log_text());
  REQUIRE(third->wait_for_exit(60s) == 0);
  CHECK(third->log_contains("privacy budget"));
  CHECK(read_jsonl(journal).size() == 3);
}

TEST_CASE("central DP: the aggregator adds the whole noise, states no epsilon against itself, and sotto-dp reproduces the models' epsilon",
          "[integration][dp][secagg]") {
  DpRun run(0, "central", 2);
  const auto rounds = run.run_to_end();
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 2);
  for (const auto& line : rounds) {
    CHECK(line.at("status") == "completed");
    const auto& p = line.at("privacy");
    CHECK(p.at("mode") == "central");
    CHECK(p.at("honest") == 1);  // the aggregator's one draw carries all the noise
    CHECK(p.at("epsilon").is_null());
    CHECK(p.at("epsilon_against_aggregator_applies") == false);
    const double expected = sotto_dp_epsilon(line.at("round"), run.dir.path(), 1).at("epsilon");
    CHECK(p.at("epsilon_released").get<double>() == Approx(expected).epsilon(1e-9));
  }
  CHECK(read_jsonl(run.agg.state_dir / "privacy.jsonl").size() == 2);
}

TEST_CASE("local DP: every client adds the whole noise itself and the epsilon is its own update's",
          "[integration][dp][secagg]") {
  DpRun run(0, "local", 2);
  // Devices that trust nobody: they take part only in local mode, and assume every other client colludes.
  const auto rounds = run.run_to_end("[privacy]\naccepted_modes = [\"local\"]\nassumed_corruption_rate = 0.99\n"
                                     "min_noise_multiplier = " + std::to_string(kNoise * 0.999) + "\n");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 2);
  for (const auto& line : rounds) {
    CHECK(line.at("status") == "completed");
    const auto& p = line.at("privacy");
    CHECK(p.at("mode") == "local");
    CHECK(p.at("honest") == 1);  // each update carries all the noise
    CHECK(p.at("sampling").get<std::string>().find("local DP") != std::string::npos);
    const double expected = sotto_dp_epsilon(line.at("round"), run.dir.path(), 1).at("epsilon");
    CHECK(p.at("epsilon").get<double>() == Approx(expected).epsilon(1e-9));
    CHECK(p.at("epsilon_released").get<double>() == Approx(expected).epsilon(1e-9));
  }
  // Each device computed the same epsilon itself, from its own share alone.
  for (int i = 1; i <= kClients; ++i) {
    const auto ledger = read_ledger(run.dir / ("client-" + std::to_string(i)));
    INFO("client-" << i << " ledger: " << nlohmann::json(ledger).dump());
    REQUIRE(ledger.size() == 4);  // per round: "sending", then the outcome
    const auto& p = ledger.back().at("privacy");
    CHECK(p.at("mode") == "local");
    CHECK(p.at("honest") == 1);
    CHECK(p.at("noise_multiplier").get<double>() == Approx(kNoise).epsilon(1e-3));
    CHECK(p.at("epsilon").get<double>() == Approx(rounds.back().at("privacy").at("epsilon").get<double>()).epsilon(1e-9));
  }
}

TEST_CASE("DP on plain rounds: central and local noise without secure aggregation and sotto-dp reproduces each epsilon",
          "[integration][dp]") {
  const std::string mode = GENERATE("central", "local");
  DpRun run(0, mode, 2, false);
  const auto rounds = run.run_to_end("[privacy]\naccepted_modes = [\"" + mode + "\"]\n");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 2);
  for (const auto& line : rounds) {
    CHECK(line.at("status") == "completed");
    CHECK_FALSE(line.contains("secagg"));
    const auto& p = line.at("privacy");
    CHECK(p.at("mode") == mode);
    CHECK(p.at("honest") == 1);
    CHECK(p.at("charged") == true);
    // A plain round has no modulus; its grid is chosen as for 32 bits (secure_aggregation.bits' default).
    const double expected = sotto_dp_epsilon(line.at("round"), run.dir.path(), 1, 32).at("epsilon");
    CHECK(p.at("epsilon_released").get<double>() == Approx(expected).epsilon(1e-9));
    if (mode == "central") {
      CHECK(p.at("epsilon").is_null());  // it sees the updates themselves
    } else {
      CHECK(p.at("epsilon").get<double>() == Approx(expected).epsilon(1e-9));
    }
  }
  CHECK(read_jsonl(run.agg.state_dir / "privacy.jsonl").size() == 2);
  const auto ledger = read_ledger(run.dir / "client-1");
  INFO("ledger: " << nlohmann::json(ledger).dump());
  REQUIRE_FALSE(ledger.empty());
  CHECK(ledger.back().at("secure_aggregation") == false);
  CHECK(ledger.back().at("privacy").at("mode") == mode);
  CHECK(ledger.back().at("privacy").at("noise_multiplier").get<double>() == Approx(kNoise).epsilon(1e-3));
}

TEST_CASE("adaptive clipping: the clip norm moves with the noised clipped-count bits, stays under what the devices "
          "announced, and resumes from the checkpoint",
          "[integration][dp][secagg]") {
  // Under distributed DP with SecAgg+, and under central DP in plain rounds (the aggregator reads each bit from
  // whether the clipped update arrives at the clip norm). Every device accepts a clip norm of at most 1.3 and says
  // so in its hello; the run starts at 1. The count's noise (2 bits' worth) must exceed half the noise multiplier,
  // the bit being part of the noised vector.
  const std::string mode = GENERATE("distributed", "central");
  const bool secure = mode == "distributed";
  INFO(mode);
  DpRun run(0, mode, 2, secure,
            "adaptive_clipping = true\ntarget_unclipped_quantile = 0.5\nclip_learning_rate = 0.5\n"
            "clipped_count_stddev = 2\n");
  const std::string devices = "[privacy]\nmax_clip_norm = 1.3\naccepted_modes = [\"" + mode + "\"]\n";
  auto rounds = run.run_to_end(devices);
  // Two more rounds after a restart: they start from the clip norm the checkpoint carried.
  run.agg.total_rounds = 4;
  write_aggregator_config(run.config, run.agg);
  rounds = run.run_to_end(devices);
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 4);
  double previous_next = 0;
  for (const auto& line : rounds) {
    CHECK(line.at("status") == "completed");
    const auto& p = line.at("privacy");
    const auto& a = p.at("adaptive_clipping");
    const double clip = p.at("clip_norm");
    CHECK(clip <= 1.3);
    CHECK(a.at("next_clip_norm").get<double>() <= 1.3);
    CHECK(a.at("mechanism_clip_norm").get<double>() > clip);
    const double fraction = a.at("unclipped_fraction");
    CHECK(fraction >= 0);
    CHECK(fraction <= 1);
    if (line.at("round") == 1) CHECK(clip == Approx(kClip));
    if (previous_next > 0) CHECK(clip == Approx(previous_next));  // across the restart too
    previous_next = a.at("next_clip_norm");
    // The count is one more coordinate of the mechanism, and sotto-dp accounts it so.
    CHECK(p.at("dimension") == kDimension + 1);
    CHECK(line.contains("secagg") == secure);
    if (secure) {
      const double expected =
          sotto_dp_epsilon(line.at("round"), run.dir.path(), 2, kBits, kDimension + 1).at("epsilon");
      CHECK(p.at("epsilon").get<double>() == Approx(expected).epsilon(1e-9));
    } else {  // central: one honest noise source, a plain round's grid as for 32 bits; nothing against the aggregator
      const double expected = sotto_dp_epsilon(line.at("round"), run.dir.path(), 1, 32, kDimension + 1).at("epsilon");
      CHECK(p.at("epsilon_released").get<double>() == Approx(expected).epsilon(1e-9));
      CHECK(p.at("epsilon").is_null());
    }
  }
  const auto ledger = read_ledger(run.dir / "client-1");
  INFO("ledger: " << nlohmann::json(ledger).dump());
  REQUIRE_FALSE(ledger.empty());
  const auto& entry = ledger.back();
  const double told_clip = (secure ? entry : entry.at("privacy")).at("clip_norm").get<double>();
  CHECK(told_clip == Approx(rounds.back().at("privacy").at("clip_norm").get<double>()));
}

}  // namespace sotto::test
