#include "aggregator/aggregator_config.h"

#include <catch2/catch.hpp>
#include <fstream>

#include "tests/support/test_support.h"

using namespace sotto;

namespace {

const char* kMinimal = R"([server]
cert_file = "server.pem"
key_file = "server.key"
ca_file = "ca.pem"
)";

std::filesystem::path write_config(const sotto::test::TempDir& dir, const std::string& text) {
  auto path = dir.path() / "aggregator.toml";
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("aggregator config: defaults, and relative paths resolve against the config file") {
  sotto::test::TempDir dir;
  auto c = aggregator::load_aggregator_config(write_config(dir, kMinimal));
  CHECK(c.cert_file == dir.path() / "server.pem");
  CHECK(c.port == 8443);
  CHECK(c.rounds.total_rounds == 5);
  CHECK(c.rounds.plan.optimizer == "sgd");
  CHECK(c.auth_mode == aggregator::AuthMode::kMutualTlsOrToken);
  CHECK(c.state_dir == dir.path() / "state");
}

TEST_CASE("aggregator config: every bad value is refused with its key named") {
  sotto::test::TempDir dir;
  struct Case {
    std::string extra;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"[rounds]\ncohort_target = 2\ncohort_min = 3\n", "'rounds.cohort_min'"},
      {"[rounds]\ncohort_taget = 2\n", "unknown key 'rounds.cohort_taget'"},
      {"[plan]\noptimizer = \"adagrad\"\n", "'plan.optimizer'"},
      {"[plan]\nlearning_rate = -1.0\n", "'plan.learning_rate'"},
      {"[auth]\nmode = \"token\"\n", "'auth.tokens'"},
      {"[auth]\ntokens = [\"short\"]\n", "'auth.tokens'"},
      {"[server]\nport = 70000\n", "'server.port'"},
      {"[rounds]\ntotal = \"five\"\n", "'rounds.total' must be an integer"},
  };
  for (const auto& k : cases) {
    std::string text = kMinimal;
    if (k.extra.rfind("[server]", 0) == 0) {
      text.insert(text.find('\n') + 1, k.extra.substr(k.extra.find('\n') + 1));
    } else {
      text += k.extra;
    }
    INFO(text);
    CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(dir, text)), Catch::Contains(k.says));
  }
}

TEST_CASE("aggregator config: a missing required key is named") {
  sotto::test::TempDir dir;
  CHECK_THROWS_WITH(aggregator::load_aggregator_config(write_config(dir, "[server]\nport = 1\n")),
                    Catch::Contains("'server.cert_file' is required"));
}
