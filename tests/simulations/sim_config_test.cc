// sotto-sim's config: defaults, --set overrides, and errors that name the key.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "common/util/error.h"
#include "simulations/sim_config.h"

using namespace sotto;

namespace {

std::filesystem::path write_config(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("sotto-sim-config-" + std::to_string(getpid()) + "-" + name + ".toml");
  std::ofstream(path) << text;
  return path;
}

std::string load_error(const std::filesystem::path& file, const std::vector<std::string>& overrides = {}) {
  try {
    sim::load_sim_config(file, overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("config: every key has a default") {
  const auto c = sim::load_sim_config("");
  CHECK(c.population == 100);
  CHECK(c.cohort_size == 10);
  CHECK(c.sampling == sim::Sampling::kUniform);
  CHECK(c.partition == "iid");
  CHECK(c.strategy.name == "fedavg");
  CHECK(c.threads >= 1);
  CHECK(c.output_dir.is_absolute());
}

TEST_CASE("config: an unknown key is rejected by name") {
  const auto f = write_config("unknown", "population = 20\n[plan]\nepochz = 2\n");
  CHECK_THAT(load_error(f), Catch::Contains("plan.epochz"));
  CHECK_THAT(load_error("", {"cohort_sise=3"}), Catch::Contains("cohort_sise"));
}

TEST_CASE("config: a bad partition name is rejected by name") {
  const auto f = write_config("partition", "[data]\npartition = \"dirichlett\"\n");
  const std::string e = load_error(f);
  CHECK_THAT(e, Catch::Contains("data.partition"));
  CHECK_THAT(e, Catch::Contains("dirichlet"));
}

TEST_CASE("config: cohort_size larger than population is rejected") {
  const auto f = write_config("cohort", "population = 5\ncohort_size = 6\n");
  const std::string e = load_error(f);
  CHECK_THAT(e, Catch::Contains("cohort_size"));
  CHECK_THAT(e, Catch::Contains("population"));
}

TEST_CASE("config: bad values and bad --set assignments name the key") {
  CHECK_THAT(load_error("", {"plan.learning_rate=-1"}), Catch::Contains("plan.learning_rate"));
  CHECK_THAT(load_error("", {"rounds=\"ten\""}), Catch::Contains("rounds"));
  CHECK_THAT(load_error("", {"sampling=bernoulli"}), Catch::Contains("sampling"));
  CHECK_THAT(load_error("", {"strategy.name=fedprox"}), Catch::Contains("plan.proximal_mu"));
  CHECK_THAT(load_error("", {"noequals"}), Catch::Contains("key=value"));
  CHECK_THAT(load_error("", {"rounds=3", "rounds.total=3"}), Catch::Contains("'rounds' is a value"));
  CHECK_THAT(load_error("", {"rounds.total=3"}), Catch::Contains("key 'rounds'"));
}

TEST_CASE("config: --set overrides file keys and adds new ones") {
  const auto f = write_config("set", "population = 50\nrounds = 3\n[plan]\nepochs = 2\n");
  const auto c = sim::load_sim_config(
      f, {"rounds=7", "plan.learning_rate=0.2", "data.partition=dirichlet", "data.alpha=0.1", "strategy.name=\"fedadam\""},
      std::filesystem::path("/tmp/sotto-sim-out"));
  CHECK(c.population == 50);
  CHECK(c.rounds == 7);
  CHECK(c.plan.epochs == 2);
  CHECK(c.plan.learning_rate == Approx(0.2));
  CHECK(c.partition == "dirichlet");
  CHECK(c.alpha == Approx(0.1));
  CHECK(c.strategy.name == "fedadam");
  CHECK(c.output_dir == "/tmp/sotto-sim-out");
}

TEST_CASE("config: the resolved config reads back to the same values") {
  auto c = sim::load_sim_config("", {"population=33", "cohort_size=4", "sampling=poisson", "sampling_rate=0.25",
                                     "data.partition=k_classes", "data.classes_per_client=3", "seed=9"});
  const auto f = write_config("resolved", sim::to_toml(c));
  const auto back = sim::load_sim_config(f);
  CHECK(sim::to_toml(back) == sim::to_toml(c));
  CHECK(back.sampling == sim::Sampling::kPoisson);
  CHECK(back.sampling_rate == Approx(0.25));
  CHECK(back.classes_per_client == 3);
}

TEST_CASE("config: secure-aggregation dropouts need secure aggregation and enough clients") {
  CHECK_THROWS_WITH(sim::load_sim_config("", {"dropout.share_keys=0.1"}), Catch::Contains("dropout.share_keys"));
  CHECK_THROWS_WITH(sim::load_sim_config("", {"secure_aggregation.enabled=true", "cohort_size=2"}),
                    Catch::Contains("cohort_size"));
  CHECK_THROWS_WITH(sim::load_sim_config("", {"dropout.update=1.5"}), Catch::Contains("dropout.update"));
  CHECK_THROWS_WITH(sim::load_sim_config("", {"secure_aggregation.neighbours=3"}),
                    Catch::Contains("secure_aggregation.neighbours"));
  const auto c = sim::load_sim_config("", {"secure_aggregation.enabled=true", "dropout.unmask=0.2"});
  CHECK(c.secure.enabled);
  CHECK(c.dropout.unmask == 0.2);
}

TEST_CASE("config: the TLS transport refuses what only the in-memory engine can do") {
  CHECK_THROWS_WITH(sim::load_sim_config("", {"transport=tls", "sampling=poisson"}), Catch::Contains("sampling"));
  // Simulated dropouts run over TLS too (the clients' fault_injection.vanish_after).
  CHECK(sim::load_sim_config("", {"transport=tls", "dropout.update=0.1"}).dropout.update == 0.1);
  CHECK_THROWS_WITH(sim::load_sim_config("", {"transport=tls", "population=1000", "cohort_size=100"}),
                    Catch::Contains("cohort_size"));
  CHECK_THROWS_WITH(sim::load_sim_config("", {"transport=carrier-pigeon"}), Catch::Contains("transport"));
  CHECK(sim::load_sim_config("", {"transport=tls"}).transport == sim::Transport::kTls);
}
