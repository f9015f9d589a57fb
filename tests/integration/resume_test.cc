// Crash and resume: the aggregator is killed with SIGKILL right after round 2 of 4 completes (its rounds.jsonl line
// then removed, as a crash just before the line would have left it) and restarted with
// the same config and state directory. It must resume from its checkpoint — the very model it had written — and
// the clients, never restarted, must reconnect on their own and see training through to the end.
#include <signal.h>

#include <catch2/catch.hpp>

#include "common/codec/model_file.h"
#include "tests/support/test_support.h"

namespace sotto::test {

TEST_CASE("an aggregator killed after round 2 resumes from its checkpoint and the clients carry on",
          "[integration][resume]") {
  TempDir dir("resume");
  const Pki pki = make_pki(dir / "pki", 3);

  AggregatorOptions agg;
  agg.state_dir = dir / "aggregator";
  agg.pki = pki;
  agg.port = pick_free_port();  // fixed, so that the restarted aggregator is where the clients look for it
  agg.total_rounds = 4;
  agg.cohort_target = 3;
  agg.cohort_min = 3;
  const fs::path config = write_aggregator_config(dir / "aggregator.toml", agg);
  const fs::path rounds_file = agg.state_dir / "rounds.jsonl";
  const fs::path checkpoint_file = agg.state_dir / "checkpoint.sotto";

  auto first = start_aggregator(config, dir / "aggregator-1.log");
  REQUIRE(wait_for_port(agg.state_dir, 60s, first.get()) == agg.port);

  // Enough examples that a round lasts a couple of seconds: the kill lands well inside round 3.
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 1; i <= 3; ++i) {
    ClientOptions c = mtls_client_options(pki, i, agg.port);
    c.shard_index = static_cast<std::uint32_t>(i - 1);
    c.max_examples = 1500;
    c.backoff_initial_s = 0.1;
    c.backoff_max_s = 0.5;
    c.state_dir = dir / c.id;
    c.save_local_models = false;
    clients.push_back(start_client(c.id, write_client_config(dir / (c.id + ".toml"), c), dir / (c.id + ".log")));
  }

  // Kill the aggregator as soon as round 2 is logged (the checkpoint is written before the log line) and every
  // client has its result, so that each counts round 2 as a contribution: a kill between the line and the results
  // would leave that round unconfirmed for the clients, which is right but not what this test counts.
  REQUIRE(wait_until([&] {
    if (read_jsonl(rounds_file).size() < 2) return false;
    for (const auto& c : clients) {
      if (!c->log_contains("round 2: completed")) return false;
    }
    return true;
  }, 120s, 5ms));
  first->kill(SIGKILL);
  REQUIRE(first->wait_for_exit(10s) == 128 + SIGKILL);
  const auto checkpoint = codec::read_model_file(checkpoint_file);
  const std::string checkpoint_bytes = read_file(checkpoint_file);
  {
    const auto rounds = read_jsonl(rounds_file);
    INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
    REQUIRE(rounds.size() == 2);
    REQUIRE(checkpoint.completed_rounds == 2);
    REQUIRE(checkpoint.next_round_id == 3);
  }
  // The checkpoint is the model of round 2, bit for bit.
  REQUIRE(checkpoint.model == codec::read_model_file(agg.state_dir / "model-round-2.sotto").model);
  // A crash can also land after the checkpoint is written and before the round's line is appended. Recreate that
  // state by removing round 2's line: the checkpoint carries it, and the restarted aggregator appends it.
  {
    const std::string text = read_file(rounds_file);
    const auto first_line_end = text.find('\n');
    REQUIRE(first_line_end != std::string::npos);
    write_file(rounds_file, text.substr(0, first_line_end + 1));
    REQUIRE(read_jsonl(rounds_file).size() == 1);
  }

  // Same config, same state directory.
  fs::remove(agg.state_dir / "port");
  auto second = start_aggregator(config, dir / "aggregator-2.log");
  REQUIRE(wait_for_port(agg.state_dir, 60s, second.get()) == agg.port);
  {
    INFO("restarted aggregator's log:\n" << second->log_text());
    // The checkpoint is read while the restarted aggregator already listens.
    REQUIRE(wait_until([&] { return second->log_contains("resuming from " + checkpoint_file.string() +
                                                           ": 2 rounds completed, next round 3"); }, 60s));
    CHECK_FALSE(second->log_contains("starting a new training"));
    REQUIRE(wait_until([&] { return second->log_contains("round 2: its rounds.jsonl line was lost in a crash"); }, 30s));
  }
  // Nothing rewrote the checkpoint on start: the restarted aggregator starts from exactly those bytes.
  CHECK(codec::read_model_file(checkpoint_file).model == checkpoint.model);

  for (auto& c : clients) {
    const auto code = c->wait_for_exit(150s);
    INFO(c->name() << " log:\n" << c->log_text());
    REQUIRE(code == 0);
    CHECK(c->log_contains("contributed to 4 rounds"));
    CHECK(c->log_contains("aggregator not reachable"));  // it did notice the crash and reconnect
  }
  REQUIRE(second->wait_for_exit(30s) == 0);

  const auto rounds = read_jsonl(rounds_file);
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 4);
  CHECK(rounds[1].value("restored_from_checkpoint", false));
  CHECK_FALSE(rounds[2].value("restored_from_checkpoint", false));
  for (std::uint64_t r = 1; r <= 4; ++r) {
    CHECK(rounds[r - 1].at("round") == r);
    CHECK(rounds[r - 1].at("status") == "completed");
    CHECK(rounds[r - 1].at("completed_rounds") == r);
    CHECK(rounds[r - 1].at("survivors") == 3);
  }
  const auto final_checkpoint = codec::read_model_file(checkpoint_file);
  CHECK(final_checkpoint.completed_rounds == 4);
  CHECK(final_checkpoint.next_round_id == 5);
  // Round 3 after the restart moved on from the resumed model.
  const auto round3 = codec::read_model_file(agg.state_dir / "model-round-3.sotto");
  CHECK(round3.completed_rounds == 3);
  CHECK_FALSE(round3.model == checkpoint.model);
  CHECK(read_file(checkpoint_file) != checkpoint_bytes);
}

namespace {

// One FedAdam training of 4 rounds by 3 clients, reproducible to the bit: updates are summed in client-id order and
// every client's training seed follows from the round id. With `kill_after_round`, the aggregator is killed with
// SIGKILL once that round is logged and started again on the same state directory. Returns the final checkpoint.
codec::ModelFile fedadam_run(const fs::path& dir, const Pki& pki, std::optional<std::uint64_t> kill_after_round) {
  AggregatorOptions agg;
  agg.state_dir = dir / "aggregator";
  agg.pki = pki;
  agg.port = pick_free_port();
  agg.total_rounds = 4;
  agg.cohort_target = 3;
  agg.cohort_min = 3;
  agg.rounds_toml = "reproducible_aggregation = true\nseed = 7\n";
  agg.extra_toml = "[strategy]\nname = \"fedadam\"\nserver_learning_rate = 0.01\n";
  const fs::path config = write_aggregator_config(dir / "aggregator.toml", agg);

  auto aggregator = start_aggregator(config, dir / "aggregator-1.log");
  REQUIRE(wait_for_port(agg.state_dir, 60s, aggregator.get()) == agg.port);
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 1; i <= 3; ++i) {
    ClientOptions c = mtls_client_options(pki, i, agg.port);
    c.shard_index = static_cast<std::uint32_t>(i - 1);
    c.max_examples = 600;
    c.save_local_models = false;
    clients.push_back(start_client(c.id, write_client_config(dir / (c.id + ".toml"), c), dir / (c.id + ".log")));
  }
  if (kill_after_round) {
    REQUIRE(wait_until([&] { return read_jsonl(agg.state_dir / "rounds.jsonl").size() >= *kill_after_round; }, 120s,
                       5ms));
    aggregator->kill(SIGKILL);
    REQUIRE(aggregator->wait_for_exit(10s) == 128 + SIGKILL);
    fs::remove(agg.state_dir / "port");
    aggregator = start_aggregator(config, dir / "aggregator-2.log");
    REQUIRE(wait_for_port(agg.state_dir, 60s, aggregator.get()) == agg.port);
  }
  for (auto& c : clients) {
    INFO(c->name() << " log:\n" << c->log_text());
    REQUIRE(c->wait_for_exit(150s) == 0);
  }
  REQUIRE(aggregator->wait_for_exit(30s) == 0);
  return codec::read_model_file(agg.state_dir / "checkpoint.sotto");
}

}  // namespace

TEST_CASE("a FedAdam run killed after round 2 of 4 and restarted ends with the model of an uninterrupted run",
          "[integration][resume]") {
  TempDir dir("resume-fedadam");
  const Pki pki = make_pki(dir / "pki", 3);
  const codec::ModelFile uninterrupted = fedadam_run(dir / "uninterrupted", pki, std::nullopt);
  const codec::ModelFile resumed = fedadam_run(dir / "resumed", pki, 2);
  REQUIRE(uninterrupted.completed_rounds == 4);
  REQUIRE(resumed.completed_rounds == 4);
  CHECK(uninterrupted.strategy == "fedadam");
  // The server optimizer's moments came back from the checkpoint: without them the resumed run's rounds 3 and 4
  // would take different steps.
  CHECK(resumed.model == uninterrupted.model);
  CHECK(resumed.strategy_state == uninterrupted.strategy_state);
}

}  // namespace sotto::test
