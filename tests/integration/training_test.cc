// Training end to end: the real sotto-aggregator and three sotto-client processes over mutual TLS on loopback.
// Checks that rounds complete, that every round's global model is exactly the example-weighted mean of the
// clients' local models (FedAvg), that a client killed mid-round is dropped without stopping the round while
// cohort_min survive, and that below cohort_min the round is abandoned with the global model left bit-identical.
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "common/codec/model_file.h"
#include "tests/support/test_support.h"

namespace sotto::test {
namespace {

constexpr Seconds kRunTimeout = 150s;

// One aggregator and its clients in a temporary directory.
class Run {
 public:
  Run(const std::string& tag, int num_clients) : dir_(tag), pki_(make_pki(dir_ / "pki", num_clients)) {
    agg.state_dir = dir_ / "aggregator";
    agg.pki = pki_;
  }

  AggregatorOptions agg;
  std::string client_extra_toml;  // appended to every client's config

  const fs::path& state_dir() const { return agg.state_dir; }
  fs::path client_dir(int i) const { return dir_ / ("client-" + std::to_string(i)); }

  Process& start_aggregator() {
    const auto config = write_aggregator_config(dir_ / "aggregator.toml", agg);
    aggregator_ = test::start_aggregator(config, dir_ / "aggregator.log");
    port_ = wait_for_port(agg.state_dir, 60s, aggregator_.get());
    return *aggregator_;
  }

  // Client i (1-based) with certificate client-i, shard i-1 of 3, state in client_dir(i).
  Process& start_client(int i, std::size_t max_examples) {
    ClientOptions c = mtls_client_options(pki_, i, port_);
    c.num_shards = 3;
    c.shard_index = static_cast<std::uint32_t>(i - 1);
    c.max_examples = max_examples;
    c.state_dir = client_dir(i);
    c.extra_toml = client_extra_toml;
    const auto config = write_client_config(dir_ / ("client-" + std::to_string(i) + ".toml"), c);
    auto& slot = clients_[i];
    slot.reset();  // a restarted client replaces the old (already exited) process
    slot = test::start_client(c.id, config, dir_ / ("client-" + std::to_string(i) + ".log"));
    return *slot;
  }

  Process& aggregator() { return *aggregator_; }
  Process& client(int i) { return *clients_.at(i); }

 private:
  TempDir dir_;
  Pki pki_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Process> aggregator_;
  std::map<int, std::unique_ptr<Process>> clients_;
};

void require_exit(Process& p, int expected, Seconds timeout = kRunTimeout) {
  const auto code = p.wait_for_exit(timeout);
  INFO(p.name() << " log:\n" << p.log_text());
  REQUIRE(code.has_value());
  REQUIRE(*code == expected);
}

// The client's own record of how many examples it trained on in `round`.
std::uint64_t ledger_examples(const fs::path& client_dir, std::uint64_t round) {
  for (const auto& line : read_ledger(client_dir)) {
    if (line.at("round").get<std::uint64_t>() == round) return line.at("examples").get<std::uint64_t>();
  }
  FAIL("no ledger entry for round " << round << " in " << client_dir.string() + "'s ledger");
  return 0;
}


std::set<std::string> dropped_clients(const nlohmann::json& record) {
  std::set<std::string> out;
  for (const auto& d : record.at("dropped")) out.insert(d.at("client").get<std::string>());
  return out;
}

// Requires `actual` to be FedAvg of `locals` (model, example count) over `previous`: float tensors equal the
// example-weighted mean of the local models (computed here in double) within 1e-6 absolute + 1e-6 relative;
// integer tensors (BatchNorm's num_batches_tracked) equal previous + round(weighted mean of (local - previous)).
void require_weighted_mean(const model::ModelParameters& previous,
                           const std::vector<std::pair<model::ModelParameters, double>>& locals,
                           const model::ModelParameters& actual) {
  REQUIRE_FALSE(locals.empty());
  REQUIRE_FALSE(actual.layout_mismatch(previous).has_value());
  double total = 0;
  for (const auto& [local, weight] : locals) {
    REQUIRE_FALSE(local.layout_mismatch(previous).has_value());
    REQUIRE(weight > 0);
    total += weight;
  }
  std::size_t checked = 0, mismatches = 0;
  std::string first_mismatch;
  double worst = 0;
  for (std::size_t t = 0; t < actual.size(); ++t) {
    const model::Tensor& out = actual.tensors()[t];
    const std::size_t n = out.num_elements();
    for (std::size_t i = 0; i < n; ++i) {
      double got = 0, expected = 0, tolerance = 0;
      if (out.dtype == model::DType::kFloat32) {
        for (const auto& [local, weight] : locals) expected += weight * static_cast<double>(local.tensors()[t].as<float>()[i]);
        expected /= total;
        got = out.as<float>()[i];
        tolerance = 1e-6 + 1e-6 * std::abs(expected);
      } else if (out.dtype == model::DType::kInt64) {
        const double base = static_cast<double>(previous.tensors()[t].as<std::int64_t>()[i]);
        double delta = 0;
        for (const auto& [local, weight] : locals) {
          delta += weight * (static_cast<double>(local.tensors()[t].as<std::int64_t>()[i]) - base);
        }
        expected = base + std::llround(delta / total);
        got = static_cast<double>(out.as<std::int64_t>()[i]);
      } else {
        FAIL("tensor '" << out.name << "' has an unexpected dtype " << model::dtype_name(out.dtype));
      }
      ++checked;
      const double error = std::abs(got - expected);
      worst = std::max(worst, error);
      if (error > tolerance) {
        if (mismatches++ == 0) {
          std::ostringstream s;
          s.precision(9);
          s << "tensor '" << out.name << "' element " << i << ": got " << got << ", expected " << expected;
          first_mismatch = s.str();
        }
      }
    }
  }
  INFO("elements checked: " << checked << ", worst absolute error " << worst << "; first mismatch: " << first_mismatch);
  REQUIRE(checked == actual.total_elements());
  REQUIRE(mismatches == 0);
}

// Loads each listed client's local-round-<round> model with its ledger's example count.
std::vector<std::pair<model::ModelParameters, double>> local_models(Run& run, const std::vector<int>& clients,
                                                                    std::uint64_t round,
                                                                    const std::map<int, std::size_t>& max_examples) {
  std::vector<std::pair<model::ModelParameters, double>> out;
  for (int i : clients) {
    const auto file = codec::read_model_file(run.client_dir(i) / ("local-round-" + std::to_string(round) + ".sotto"));
    const std::uint64_t examples = ledger_examples(run.client_dir(i), round);
    INFO("client-" << i << " round " << round);
    REQUIRE(examples == max_examples.at(i));       // the shard was capped at data.max_examples
    REQUIRE(file.completed_rounds == examples);     // the client stores its example count in the file's header
    out.emplace_back(file.model, static_cast<double>(examples));
  }
  return out;
}

fs::path round_model(const Run& run, std::uint64_t round) {
  return run.state_dir() / ("model-round-" + std::to_string(round) + ".sotto");
}

}  // namespace

TEST_CASE("three clients train two rounds over mutual TLS and each global model is the weighted mean of theirs",
          "[integration][training]") {
  Run run("training", 3);
  run.agg.total_rounds = 2;
  run.agg.cohort_target = 3;
  run.agg.cohort_min = 2;
  run.agg.evaluate = true;
  run.agg.eval_max_examples = 500;
  // Room for one update at a time: the others wait at the upload gate (every other test keeps the default).
  run.agg.server_toml = "max_upload_assembly_bytes = 1";
  run.start_aggregator();
  // Different shard sizes, so that an unweighted mean would not pass.
  const std::map<int, std::size_t> examples{{1, 200}, {2, 300}, {3, 400}};
  for (const auto& [i, n] : examples) run.start_client(i, n);

  for (int i = 1; i <= 3; ++i) require_exit(run.client(i), 0);
  require_exit(run.aggregator(), 0);
  for (int i = 1; i <= 3; ++i) CHECK(run.client(i).log_contains("round 2: completed"));

  const auto rounds = read_jsonl(run.state_dir() / "rounds.jsonl");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 2);
  for (std::uint64_t r = 1; r <= 2; ++r) {
    const auto& line = rounds[r - 1];
    CHECK(line.at("round") == r);
    CHECK(line.at("status") == "completed");
    CHECK(line.at("completed_rounds") == r);
    CHECK(line.at("survivors") == 3);
    CHECK(line.at("examples") == 900);
    CHECK(string_set(line.at("participants")) == std::set<std::string>{"client-1", "client-2", "client-3"});
    CHECK(line.at("dropped").empty());
    REQUIRE(line.contains("test_accuracy"));
    CHECK(line.at("test_accuracy").get<double>() >= 0.0);
    CHECK(line.at("test_accuracy").get<double>() <= 1.0);
    CHECK(line.at("test_examples") == 500);
  }

  // The global model changes every round, and each is FedAvg of the clients' local models of that round.
  for (std::uint64_t r = 1; r <= 2; ++r) {
    INFO("round " << r);
    const auto previous = codec::read_model_file(round_model(run, r - 1));
    const auto current = codec::read_model_file(round_model(run, r));
    CHECK(current.completed_rounds == r);
    CHECK(current.next_round_id == r + 1);
    REQUIRE_FALSE(current.model == previous.model);
    require_weighted_mean(previous.model, local_models(run, {1, 2, 3}, r, examples), current.model);
  }
  const auto checkpoint = codec::read_model_file(run.state_dir() / "checkpoint.sotto");
  CHECK(checkpoint.completed_rounds == 2);
  CHECK(checkpoint.next_round_id == 3);
  CHECK(checkpoint.model == codec::read_model_file(round_model(run, 2)).model);
}

TEST_CASE("a client killed mid-round is dropped and the round completes with the cohort_min survivors",
          "[integration][training][dropout]") {
  Run run("dropout", 3);
  run.agg.total_rounds = 1;
  run.agg.cohort_target = 3;
  run.agg.cohort_min = 2;
  run.start_aggregator();
  const std::map<int, std::size_t> examples{{1, 300}, {2, 300}, {3, 6000}};
  for (const auto& [i, n] : examples) run.start_client(i, n);

  // client-3 trains on 6000 examples: kill it as soon as it has the global model, long before it can upload.
  Process& victim = run.client(3);
  REQUIRE(wait_until([&] { return victim.log_contains("round 1: received the global model"); }, 90s));
  victim.kill(SIGKILL);
  REQUIRE(victim.wait_for_exit(10s) == 128 + SIGKILL);

  require_exit(run.client(1), 0);
  require_exit(run.client(2), 0);
  require_exit(run.aggregator(), 0);

  const auto rounds = read_jsonl(run.state_dir() / "rounds.jsonl");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 1);
  const auto& line = rounds[0];
  CHECK(line.at("round") == 1);
  CHECK(line.at("status") == "completed");
  CHECK(line.at("cohort") == 3);
  CHECK(line.at("survivors") == 2);
  CHECK(string_set(line.at("participants")) == std::set<std::string>{"client-1", "client-2"});
  CHECK(dropped_clients(line) == std::set<std::string>{"client-3"});
  CHECK(line.at("dropped")[0].at("reason").get<std::string>().find("disconnected") != std::string::npos);

  // The new global model averages the two survivors only.
  const auto previous = codec::read_model_file(round_model(run, 0));
  const auto current = codec::read_model_file(round_model(run, 1));
  CHECK(current.completed_rounds == 1);
  require_weighted_mean(previous.model, local_models(run, {1, 2}, 1, examples), current.model);
}

TEST_CASE("below cohort_min a round is abandoned and the global model stays bit-identical",
          "[integration][training][dropout]") {
  Run run("abandon", 3);
  run.agg.total_rounds = 1;
  run.agg.cohort_target = 3;
  run.agg.cohort_min = 3;
  run.start_aggregator();
  const fs::path checkpoint_path = run.state_dir() / "checkpoint.sotto";
  // Written (atomically) while the aggregator already listens, before any round starts.
  REQUIRE(wait_until([&] { return fs::exists(checkpoint_path); }, 60s));
  const auto initial = codec::read_model_file(checkpoint_path);
  CHECK(initial.completed_rounds == 0);
  CHECK(initial.next_round_id == 1);
  const std::string initial_bytes = read_file(checkpoint_path);

  run.start_client(1, 300);
  run.start_client(2, 300);
  run.start_client(3, 6000);
  Process& victim = run.client(3);
  REQUIRE(wait_until([&] { return victim.log_contains("round 1: received the global model"); }, 90s));
  victim.kill(SIGKILL);
  REQUIRE(victim.wait_for_exit(10s) == 128 + SIGKILL);

  REQUIRE(wait_until([&] { return !read_jsonl(run.state_dir() / "rounds.jsonl").empty(); }, 60s));
  {
    const auto rounds = read_jsonl(run.state_dir() / "rounds.jsonl");
    INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
    REQUIRE(rounds.size() == 1);
    const auto& line = rounds[0];
    CHECK(line.at("round") == 1);
    CHECK(line.at("status") == "abandoned");
    CHECK(line.at("completed_rounds") == 0);
    CHECK(line.at("abandon_reason").get<std::string>().find("cohort_min") != std::string::npos);
    CHECK(dropped_clients(line).count("client-3") == 1);
  }
  // The checkpoint after the abandoned round holds the very same model; only the round counter moved on.
  const auto after = codec::read_model_file(checkpoint_path);
  CHECK(after.completed_rounds == 0);
  CHECK(after.next_round_id == 2);
  REQUIRE(after.model == initial.model);
  CHECK_FALSE(fs::exists(round_model(run, 1)));
  CHECK(run.aggregator().running());

  // Training goes on: a replacement client-3 joins, round 2 completes, and everyone finishes.
  run.start_client(3, 300);
  for (int i = 1; i <= 3; ++i) require_exit(run.client(i), 0);
  require_exit(run.aggregator(), 0);
  const auto rounds = read_jsonl(run.state_dir() / "rounds.jsonl");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 2);
  CHECK(rounds[1].at("round") == 2);
  CHECK(rounds[1].at("status") == "completed");
  CHECK(rounds[1].at("completed_rounds") == 1);
  CHECK(rounds[1].at("survivors") == 3);
  const auto final_checkpoint = codec::read_model_file(checkpoint_path);
  CHECK(final_checkpoint.completed_rounds == 1);
  CHECK_FALSE(final_checkpoint.model == initial.model);
  CHECK(read_file(checkpoint_path) != initial_bytes);
  // The new model is FedAvg of the round-2 local models over the unchanged initial model.
  require_weighted_mean(initial.model, local_models(run, {1, 2, 3}, 2, {{1, 300}, {2, 300}, {3, 300}}),
                        final_checkpoint.model);
}

TEST_CASE("a client whose training diverges tells the aggregator why and rounds.jsonl records it and the aggregator "
          "gives up after rounds.max_consecutive_abandoned",
          "[integration][training][dropout]") {
  Run run("diverged", 2);
  run.agg.total_rounds = 1;
  run.agg.cohort_target = 2;
  run.agg.cohort_min = 1;
  run.agg.rounds_toml = "max_consecutive_abandoned = 3\n";
  run.agg.extra_toml = "[plan]\nlearning_rate = 100.0\nmomentum = 0.9\n";  // diverges within one epoch
  run.start_aggregator();
  run.start_client(1, 300);
  run.start_client(2, 300);
  // Every round is abandoned; after the third in a row the aggregator gives up, says why, and exits non-zero.
  const auto code = run.aggregator().wait_for_exit(120s);
  INFO("aggregator log:\n" << run.aggregator().log_text());
  REQUIRE(code.has_value());
  CHECK(*code != 0);
  CHECK(run.aggregator().log_contains("3 rounds in a row were abandoned (rounds.max_consecutive_abandoned = 3)"));
  const auto rounds = read_jsonl(run.state_dir() / "rounds.jsonl");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 3);
  for (const auto& line : rounds) {
    CHECK(line.at("status") == "abandoned");
    REQUIRE(line.at("dropped").size() == 2);
    for (const auto& d : line.at("dropped")) {
      const std::string reason = d.at("reason");
      CHECK(reason.find("the client reported ERROR_CODE_INVALID_UPDATE") != std::string::npos);
      CHECK(reason.find("local training diverged") != std::string::npos);
    }
  }
  // The clients were told the run is over.
  for (int i = 1; i <= 2; ++i) {
    INFO("client-" << i << " log:\n" << run.client(i).log_text());
    CHECK(run.client(i).wait_for_exit(30s) == 0);
    CHECK(run.client(i).log_contains("local training diverged"));
  }
}


TEST_CASE("sotto-client trains the architecture its config names and says so when the task's model does not fit",
          "[integration][training]") {
  Run run("architecture", 3);
  run.agg.total_rounds = 1;
  run.agg.cohort_target = 3;
  run.agg.cohort_min = 2;
  run.agg.extra_toml = "[model]\narchitecture = \"fashion_linear\"\n";
  run.start_aggregator();
  // Client 3 keeps the default fashion_cnn: its task's model does not fit, it says what to change, and the round
  // completes with the two clients whose config names fashion_linear.
  run.start_client(3, 300);
  run.client_extra_toml = "[model]\narchitecture = \"fashion_linear\"\n";
  run.start_client(1, 300);
  run.start_client(2, 300);
  for (int i = 1; i <= 2; ++i) require_exit(run.client(i), 0);
  require_exit(run.aggregator(), 0);
  Process& wrong = run.client(3);
  INFO(wrong.log_text());
  CHECK(wrong.log_contains("does not fit the model this device trains"));
  CHECK(wrong.log_contains("[model] section"));
  CHECK(wrong.log_contains("conv1.weight"));
  const auto rounds = read_jsonl(run.state_dir() / "rounds.jsonl");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 1);
  CHECK(rounds[0].at("status") == "completed");
  CHECK(rounds[0].at("survivors") == 2);
  CHECK(dropped_clients(rounds[0]).count("client-3") == 1);
  const auto final_model = codec::read_model_file(run.state_dir() / "checkpoint.sotto").model;
  REQUIRE(final_model.find("fc.weight"));
  CHECK(final_model.find("fc.weight")->shape == std::vector<std::int64_t>{10, 784});
}

TEST_CASE("a model authored in PyTorch trains end to end: the aggregator and its clients load the TorchScript file",
          "[integration][training][torchscript]") {
  Run run("torchscript", 3);
  const fs::path file = export_torchscript(run.state_dir().parent_path(), "fashion_mlp");
  const std::string model_toml = "[model]\ntorchscript = \"" + file.string() + "\"\n";
  run.agg.total_rounds = 2;
  run.agg.cohort_target = 3;
  run.agg.cohort_min = 3;
  run.agg.extra_toml = model_toml;
  run.agg.evaluate = true;
  run.agg.eval_max_examples = 1000;
  run.client_extra_toml = model_toml;
  run.start_aggregator();
  for (int i = 1; i <= 3; ++i) run.start_client(i, 600);
  for (int i = 1; i <= 3; ++i) require_exit(run.client(i), 0);
  require_exit(run.aggregator(), 0);
  const auto rounds = read_jsonl(run.state_dir() / "rounds.jsonl");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 2);
  for (const auto& r : rounds) CHECK(r.at("status") == "completed");
  // The aggregator evaluates the global model with the same file: 1800 examples in two rounds beat chance.
  CHECK(rounds[1].at("test_accuracy").get<double>() > 0.5);
  const auto final_model = codec::read_model_file(run.state_dir() / "checkpoint.sotto").model;
  REQUIRE(final_model.find("head.weight"));
  CHECK(final_model.find("head.weight")->shape == std::vector<std::int64_t>{10, 100});
  CHECK(final_model.find("body.1.weight")->shape == std::vector<std::int64_t>{200, 784});
}

}  // namespace sotto::test
