// The sotto-aggregator command line: --help, and configs that must be refused before anything starts — with a
// non-zero exit code and a message on stderr that names the offending key.
#include <catch2/catch.hpp>
#include <fstream>

#include "tests/support/test_support.h"

namespace sotto::test {
namespace {

// Runs sotto-aggregator with `args` to completion (at most 60 s); the returned process has its exit code and log.
std::unique_ptr<Process> run_aggregator(const std::vector<std::string>& args, const fs::path& log) {
  return run_to_exit("sotto-aggregator", args, log);
}

AggregatorOptions valid_options(const TempDir& dir) {
  AggregatorOptions o;
  o.state_dir = dir / "state";
  o.pki = Pki{dir / "pki"};  // never read: the config is refused first
  return o;
}

}  // namespace

TEST_CASE("sotto-aggregator --help exits 0 and documents --config", "[integration][cli]") {
  TempDir dir("cli-help");
  const auto p = run_aggregator({"--help"}, dir / "help.log");
  REQUIRE(p->exit_code() == 0);
  const std::string text = p->log_text();
  INFO(text);
  CHECK(text.find("--config") != std::string::npos);
}

TEST_CASE("sotto-aggregator refuses an unknown config key and names it", "[integration][cli]") {
  TempDir dir("cli-key");
  AggregatorOptions o = valid_options(dir);
  o.extra_toml = "[strategy]\nname = \"fedavg\"\nlearning_rate_typo = 0.5";
  const fs::path config = write_aggregator_config(dir / "aggregator.toml", o);
  const auto p = run_aggregator({"--config", config.string()}, dir / "aggregator.log");
  CHECK(p->exit_code() != 0);
  const std::string text = p->log_text();
  INFO(text);
  CHECK(text.find("strategy.learning_rate_typo") != std::string::npos);
  CHECK(text.find("unknown key") != std::string::npos);
  CHECK_FALSE(fs::exists(o.state_dir / "port"));
}

TEST_CASE("sotto-aggregator refuses cohort_min above cohort_target and names the key", "[integration][cli]") {
  TempDir dir("cli-cohort");
  AggregatorOptions o = valid_options(dir);
  o.cohort_target = 3;
  o.cohort_min = 4;
  const fs::path config = write_aggregator_config(dir / "aggregator.toml", o);
  const auto p = run_aggregator({"--config", config.string()}, dir / "aggregator.log");
  CHECK(p->exit_code() != 0);
  const std::string text = p->log_text();
  INFO(text);
  CHECK(text.find("rounds.cohort_min") != std::string::npos);
  CHECK_FALSE(fs::exists(o.state_dir / "port"));
}

TEST_CASE("a damaged checkpoint stops sotto-aggregator before it admits anyone, and its log never says ready",
          "[integration][cli]") {
  TempDir dir("cli-checkpoint");
  AggregatorOptions o;
  o.state_dir = dir / "state";
  o.pki = make_pki(dir / "pki", 1);
  fs::create_directories(o.state_dir);
  std::ofstream(o.state_dir / "checkpoint.sotto") << "SOTTOMF2 this is not a checkpoint";
  const fs::path config = write_aggregator_config(dir / "aggregator.toml", o);
  const auto p = run_aggregator({"--config", config.string()}, dir / "aggregator.log");
  CHECK(p->exit_code() == 1);
  const std::string text = p->log_text();
  INFO(text);
  CHECK(text.find("checking the checkpoint before admitting anyone") != std::string::npos);
  CHECK(text.find("checkpoint.sotto") != std::string::npos);
  CHECK(text.find("restore it from a backup") != std::string::npos);
  CHECK(text.find("ready:") == std::string::npos);
}

}  // namespace sotto::test
