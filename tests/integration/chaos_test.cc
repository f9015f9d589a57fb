// Chaos: a seeded run of secure rounds in which the aggregator is SIGKILLed at random moments — whatever phase it
// is in then (check-in, training, a SecAgg+ step, aggregation, the checkpoint write) — and restarted on the same
// state directory, while clients are SIGKILLed at random moments too and started again. The invariants: every
// completed round is in rounds.jsonl exactly once, in order; the checkpoint loads and holds the last completed
// round's model, bit for bit; the clients that were never killed carry on through every aggregator restart on their
// own; every client ends the training. SOTTO_CHAOS_SEED and SOTTO_CHAOS_TRIALS (default 1 and 4) make it longer.
#include <signal.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>

#include "common/codec/model_file.h"
#include "tests/support/test_support.h"

namespace sotto::test {
namespace {

constexpr int kClients = 4;
constexpr std::uint64_t kRounds = 8;

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

// The aggregator's last log line: where it was when it died.
std::string last_line(const Process& p) {
  std::string text = p.log_text();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const auto cut = text.rfind('\n');
  return cut == std::string::npos ? text : text.substr(cut + 1);
}

}  // namespace

TEST_CASE("chaos: SIGKILLs of the aggregator and of clients at random moments lose and duplicate no round",
          "[integration][chaos]") {
  const std::uint64_t seed = env_or("SOTTO_CHAOS_SEED", 1), trials = env_or("SOTTO_CHAOS_TRIALS", 4);
  std::mt19937_64 chaos(seed);  // schedules the kills only: nothing secret
  TempDir dir("chaos");
  const Pki pki = make_pki(dir / "pki", kClients);
  AggregatorOptions agg;
  agg.state_dir = dir / "aggregator";
  agg.pki = pki;
  agg.port = pick_free_port();
  agg.total_rounds = kRounds;
  agg.cohort_target = kClients;
  agg.cohort_min = 3;
  agg.checkin_window_s = 2;
  agg.extra_toml = "[secure_aggregation]\nenabled = true\nstep_deadline_s = 10\n";
  const fs::path config = write_aggregator_config(dir / "aggregator.toml", agg);
  int restarts = 0;
  auto start = [&] {
    fs::remove(agg.state_dir / "port");
    auto p = start_aggregator(config, dir / ("aggregator-" + std::to_string(++restarts) + ".log"));
    REQUIRE(wait_for_port(agg.state_dir, 60s, p.get()) == agg.port);
    return p;
  };
  auto aggregator = start();
  std::vector<fs::path> client_configs;
  std::vector<std::unique_ptr<Process>> clients;
  std::vector<int> lives(kClients, 1);
  auto start_client_number = [&](int i) {
    return start_client("client-" + std::to_string(i + 1), client_configs[i],
                        dir / ("client-" + std::to_string(i + 1) + "-" + std::to_string(lives[i]) + ".log"));
  };
  for (int i = 0; i < kClients; ++i) {
    ClientOptions c = mtls_client_options(pki, i + 1, agg.port);
    c.num_shards = kClients;
    c.shard_index = static_cast<std::uint32_t>(i);
    c.max_examples = 1500;  // rounds of a second or two: the kills land inside them
    c.state_dir = dir / c.id;
    c.save_local_models = false;
    client_configs.push_back(write_client_config(dir / (c.id + ".toml"), c));
    clients.push_back(start_client_number(i));
  }

  std::set<int> killed_clients;
  for (std::uint64_t t = 0; t < trials; ++t) {
    if (read_jsonl(agg.state_dir / "rounds.jsonl").size() >= kRounds) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(100, 2500)(chaos)));
    // A client dies too, and its app starts it again; not near the end, where the restarted one would find the
    // aggregator gone for good.
    const bool rounds_left = read_jsonl(agg.state_dir / "rounds.jsonl").size() + 2 <= kRounds;
    if (chaos() % 2 == 0 && rounds_left) {
      const int i = static_cast<int>(chaos() % kClients);
      if (clients[i]->running()) {
        clients[i]->kill(SIGKILL);
        clients[i]->wait_for_exit(10s);
        ++lives[i];
        killed_clients.insert(i);
        clients[i] = start_client_number(i);
      }
    }
    if (!aggregator->running()) break;
    UNSCOPED_INFO("trial " << t << ": aggregator killed after \"" << last_line(*aggregator) << "\"");
    aggregator->kill(SIGKILL);
    REQUIRE(aggregator->wait_for_exit(10s) == 128 + SIGKILL);
    aggregator = start();
  }

  for (int i = 0; i < kClients; ++i) {
    INFO(clients[i]->name() << " log:\n" << clients[i]->log_text());
    REQUIRE(clients[i]->wait_for_exit(300s) == 0);
    if (!killed_clients.count(i)) CHECK(clients[i]->log_contains("training finished"));
  }
  INFO("aggregator log:\n" << aggregator->log_text());
  REQUIRE(aggregator->wait_for_exit(60s) == 0);

  WARN("chaos seed " << seed << ": " << restarts - 1 << " aggregator kills, " << killed_clients.size()
                     << " clients killed");
  CHECK(restarts - 1 >= 2);  // the chaos did happen before the training ended
  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  std::uint64_t completed = 0, last_round = 0, last_completed_round = 0;
  for (const auto& line : rounds) {
    const std::uint64_t round = line.at("round");
    CHECK(round > last_round);  // no round twice, none out of order
    last_round = round;
    if (line.at("status") != "completed") continue;
    CHECK(line.at("completed_rounds") == ++completed);  // none lost
    last_completed_round = round;
  }
  CHECK(completed == kRounds);
  const auto checkpoint = codec::read_model_file(agg.state_dir / "checkpoint.sotto");
  CHECK(checkpoint.completed_rounds == kRounds);
  CHECK(checkpoint.model ==
        codec::read_model_file(agg.state_dir / ("model-round-" + std::to_string(last_completed_round) + ".sotto"))
            .model);
}

}  // namespace sotto::test
