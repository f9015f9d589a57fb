// sotto-sim's personalization end to end: personal tensors that never reach the server, per-client state kept
// between rounds, held-out measures per round and for every client after the last, the local-only baseline, and
// the settings it refuses.
#include <catch2/catch.hpp>

#include <set>
#include <sstream>

#include "common/codec/model_file.h"
#include "common/data/image_dataset.h"
#include "common/util/error.h"
#include "simulations/population.h"
#include "simulations/simulation.h"
#include "tests/simulations/sim_test_helpers.h"

using namespace sotto;
using namespace sotto::sim_test;

namespace {

const std::vector<std::string> kPathological = {"data.partition=k_classes", "data.max_examples_per_client=0",
                                                "population=10", "cohort_size=5", "rounds=3",
                                                "evaluation.local_fraction=0.2"};

std::vector<std::string> with(std::vector<std::string> options, const std::vector<std::string>& more) {
  options.insert(options.end(), more.begin(), more.end());
  return options;
}

nlohmann::json summary_of(const sim::SimConfig& c) {
  return nlohmann::json::parse(file_bytes(c.output_dir / "summary.json"));
}

// clients.csv's rows, as text.
std::vector<std::string> client_rows(const sim::SimConfig& c) {
  std::istringstream in(file_bytes(c.output_dir / "clients.csv"));
  std::vector<std::string> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(line);
  return rows;
}

}  // namespace

TEST_CASE("each virtual client holds out its own examples, disjoint from those it trains on") {
  const auto c = tiny("held-out", with(kPathological, {"population=12"}));
  const auto train = data::load_fashion_mnist(c.data_dir, data::Split::kTrain);
  const sim::Population population(c, train);
  for (sim::ClientIndex client = 0; client < 12; ++client) {
    const auto examples = population.examples(client);
    const auto held = population.local_test(client);
    const std::set<std::uint32_t> trained(examples.begin(), examples.end());
    for (auto i : held) CHECK(trained.count(i) == 0);
    const double whole = static_cast<double>(population.shards()[client].size());
    CHECK(examples.size() + held.size() == population.shards()[client].size());
    CHECK(std::abs(static_cast<double>(held.size()) - 0.2 * whole) <= 1.0);
  }
}

TEST_CASE("sotto-sim with a personal head: the server never holds it, and each client measures its own") {
  auto fedper = tiny("fedper", with(kPathological, {"personalization.personal=[\"fc2.*\"]"}));
  sim::run_simulation(fedper);
  auto fedavg = tiny("fedper-baseline", kPathological);
  sim::run_simulation(fedavg);

  const auto model = codec::read_model_file(fedper.output_dir / "final_model.sotto").model;
  CHECK(model.find("fc2.weight") == nullptr);
  CHECK(model.find("fc1.weight") != nullptr);
  const auto s = summary_of(fedper), base = summary_of(fedavg);
  CHECK(s["model_bytes"].get<std::uint64_t>() < base["model_bytes"].get<std::uint64_t>());

  // Every round's clients report their held-out accuracy; the run ends with every client measured.
  const auto rounds = read_rounds(fedper.output_dir);
  REQUIRE(rounds.size() == 3);
  for (const auto& r : rounds) CHECK(r["local_evaluation"]["clients"].get<int>() == 5);
  const auto& final_measure = s["local_evaluation"];
  CHECK(final_measure["clients"].get<int>() == 10);
  CHECK(client_rows(fedper).size() == 11);  // the header and one row per client
  // A personal head fits the client's two classes: after three rounds it beats the shared model.
  CHECK(final_measure["personal"]["mean"].get<double>() > base["local_evaluation"]["personal"]["mean"].get<double>());
  // FedPer's model is the global one with the client's head: both figures are the same.
  CHECK(final_measure["personal"]["mean"].get<double>() == final_measure["global"]["mean"].get<double>());
}

TEST_CASE("sotto-sim personalization gives the same clients and model whatever the thread count") {
  for (const std::string method : {"personalization.ditto_lambda=0.5", "personalization.personal=[\"fc2.*\"]"}) {
    auto a = tiny("pers-threads-1", with(kPathological, {method, "threads=1"}));
    auto b = tiny("pers-threads-2", with(kPathological, {method, "threads=2"}));
    sim::run_simulation(a);
    sim::run_simulation(b);
    CHECK(client_rows(a) == client_rows(b));
    CHECK(file_bytes(a.output_dir / "final_model.sotto") == file_bytes(b.output_dir / "final_model.sotto"));
    CHECK(read_rounds(a.output_dir) == read_rounds(b.output_dir));
  }
}

TEST_CASE("Ditto and fine-tuning in sotto-sim: the personal model beats the global one on the client's own data") {
  for (const std::string method : {"personalization.ditto_lambda=0.1", "personalization.finetune_epochs=1"}) {
    auto c = tiny("adapt", with(kPathological, {method}));
    sim::run_simulation(c);
    const auto e = summary_of(c)["local_evaluation"];
    INFO(method << ": " << e.dump());
    CHECK(e["personal"]["mean"].get<double>() > e["global"]["mean"].get<double>() + 0.1);
  }
}

TEST_CASE("the local-only baseline trains each client alone and sends nothing") {
  auto c = tiny("local-only", with(kPathological, {"personalization.local_only=true", "rounds=4"}));
  const sim::SimSummary summary = sim::run_simulation(c);
  CHECK(summary.rounds == 4);
  CHECK_FALSE(std::filesystem::exists(c.output_dir / "final_model.sotto"));
  const auto rounds = read_rounds(c.output_dir);
  REQUIRE(rounds.size() == 4);
  for (const auto& r : rounds) CHECK(r["mode"] == "local_only");
  // In the first round each client starts from the initial model: its round of training on its own two classes
  // takes it far above it on its own held-out examples.
  const auto& first = rounds.front()["local_evaluation"];
  CHECK(first["personal"]["mean"].get<double>() > first["global"]["mean"].get<double>() + 0.3);
  const auto e = summary_of(c)["local_evaluation"];
  CHECK(e["global"].is_null());
  CHECK(e["personal"]["mean"].get<double>() > 0.5);  // two classes each: far above a tenth
}

TEST_CASE("sotto-sim refuses personalization settings it cannot honour, naming the key") {
  auto refused = [](std::vector<std::string> options, const std::string& key) {
    INFO(key);
    try {
      tiny("refused", options);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK_THAT(e.what(), Catch::Contains(key));
    }
  };
  refused({"personalization.local_only=true"}, "evaluation.local_fraction");
  refused({"personalization.local_only=true", "evaluation.local_fraction=0.2", "personalization.finetune_epochs=1"},
          "personalization.local_only");
  refused({"personalization.local_only=true", "evaluation.local_fraction=0.2", "secure_aggregation.enabled=true"},
          "personalization.local_only");
  refused({"transport=tls", "evaluation.local_fraction=0.2"}, "transport");
  refused({"evaluation.local_fraction=0.7"}, "evaluation.local_fraction");
  refused({"personalization.personal=[\"fc2.*\"]"}, "evaluation.local_fraction");
  refused({"personalization.personal=[\"fc2.*\"]", "evaluation.local_fraction=0.2", "canaries.count=2"},
          "canaries.count");
  refused({"personalization.local_only=true", "evaluation.local_fraction=0.2", "dropout.update=0.1"},
          "personalization.local_only");
  auto typo = tiny("typo", {"personalization.personal=[\"head.*\"]", "evaluation.local_fraction=0.2"});
  CHECK_THROWS_WITH(sim::run_simulation(typo), Catch::Contains("names no tensor"));
}
