// One client trying to take over plain FedAvg, against the real sotto-aggregator and sotto-client processes over
// mutual TLS (the hardening issue's item 4). The attacker claims 2^63 - 1 training examples and sends its update
// multiplied by 1000 after its participant clipped it; the aggregator clips what arrives to privacy.clip_norm and
// caps the claim at rounds.max_examples_per_client, so the new global model moves by at most one clip norm, and
// rounds.jsonl names the client it had to clip and cap.
#include <catch2/catch.hpp>
#include <limits>
#include <set>

#include "common/codec/model_file.h"
#include "common/model/clipping.h"
#include "tests/support/test_support.h"

namespace sotto::test {
namespace {

constexpr double kClipNorm = 0.5;


}  // namespace

TEST_CASE("a client claiming 2^63 examples with an inflated update moves FedAvg by at most the clip norm",
          "[integration][hardening]") {
  TempDir dir("poisoning");
  const Pki pki = make_pki(dir / "pki", 2);
  AggregatorOptions agg;
  agg.state_dir = dir / "aggregator";
  agg.pki = pki;
  agg.total_rounds = 1;
  agg.cohort_target = 2;
  agg.cohort_min = 2;
  agg.rounds_toml = "max_examples_per_client = 1000\n";
  agg.extra_toml = "[privacy]\nclip_norm = " + std::to_string(kClipNorm) + "\n";
  auto aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
  const std::uint16_t port = wait_for_port(agg.state_dir, 60s, aggregator.get());

  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 1; i <= 2; ++i) {
    ClientOptions c = mtls_client_options(pki, i, port);
    c.num_shards = 2;
    c.shard_index = static_cast<std::uint32_t>(i - 1);
    c.max_examples = 300;
    if (i == 2) {  // the attacker
      c.extra_toml = "[fault_injection]\nclaim_examples = " +
                     std::to_string(std::numeric_limits<std::int64_t>::max()) + "\nscale_update = 1000.0\n";
    }
    clients.push_back(start_client(c.id, write_client_config(dir / ("client-" + std::to_string(i) + ".toml"), c),
                                   dir / ("client-" + std::to_string(i) + ".log")));
  }
  for (auto& p : clients) {
    const auto code = p->wait_for_exit(150s);
    INFO(p->name() << " log:\n" << p->log_text());
    REQUIRE(code == 0);
  }
  REQUIRE(aggregator->wait_for_exit(60s) == 0);
  CHECK(clients[1]->log_contains("fault injection: claiming"));

  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 1);
  const auto& line = rounds[0];
  CHECK(line.at("status") == "completed");
  CHECK(line.at("schema_version") == 5);
  CHECK(string_set(line.at("clipped")) == std::set<std::string>{"client-2"});  // the honest client clipped itself
  CHECK(string_set(line.at("examples_capped")) == std::set<std::string>{"client-2"});
  CHECK(line.at("examples").get<std::uint64_t>() <= 300 + 1000);

  const auto before = codec::read_model_file(agg.state_dir / "model-round-0.sotto").model;
  const auto after = codec::read_model_file(agg.state_dir / "model-round-1.sotto").model;
  const double moved = model::l2_norm(model::subtract(after, before));
  INFO("the global model moved by " << moved);
  CHECK(moved > 0);
  CHECK(moved <= kClipNorm * (1 + 1e-4));  // FedAvg of updates each at most kClipNorm long
}

}  // namespace sotto::test
