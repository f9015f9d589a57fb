// The device's own privacy floor, against the real sotto-aggregator and sotto-client processes over mutual TLS:
// of six clients, one whose settings ask for more noise than the plan's share implies, and one that allows a smaller clip
// norm than the plan's, refuse the round before sending anything — the aggregator receives neither their keys nor
// their updates — while the others contribute and record in their ledgers the epsilon they computed themselves.
#include <catch2/catch.hpp>

#include "tests/support/test_support.h"

namespace sotto::test {

TEST_CASE("a device refuses a plan with less noise or a larger clip than it allows and sends nothing",
          "[integration][dp][secagg]") {
  constexpr int kClients = 6;
  TempDir dir("device-privacy");
  const Pki pki = make_pki(dir / "pki", kClients);
  AggregatorOptions agg;
  agg.state_dir = dir / "aggregator";
  agg.pki = pki;
  agg.total_rounds = 1;
  agg.cohort_target = kClients;
  agg.cohort_min = 3;
  agg.extra_toml =
      "[secure_aggregation]\nenabled = true\ncomplete_graph = true\nthreshold = 3\nbits = 16\nstep_deadline_s = 20\n"
      "[privacy]\nmode = \"distributed\"\nclip_norm = 1.0\nnoise_multiplier = 0.5\nmin_survivors = 3\n";
  auto aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
  const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 1; i <= kClients; ++i) {
    ClientOptions c = mtls_client_options(pki, i, port);
    c.num_shards = kClients;
    c.shard_index = static_cast<std::uint32_t>(i - 1);
    c.max_examples = 200;
    c.state_dir = dir / c.id;
    if (i == 5) c.extra_toml = "[privacy]\nmin_noise_multiplier = 1.0\n";  // the plan's share implies 0.5
    if (i == 6) c.extra_toml = "[privacy]\nmax_clip_norm = 0.5\n";
    clients.push_back(start_client(c.id, write_client_config(dir / (c.id + ".toml"), c), dir / (c.id + ".log")));
  }
  for (auto& c : clients) {
    INFO(c->name() << " log:\n" << c->log_text());
    REQUIRE(c->wait_for_exit(150s) == 0);
  }
  REQUIRE(aggregator->wait_for_exit(60s) == 0);
  CHECK(clients[4]->log_contains("below privacy.min_noise_multiplier"));
  CHECK(clients[5]->log_contains("above privacy.max_clip_norm"));

  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 1);
  const auto& line = rounds[0];
  REQUIRE(line.at("status") == "completed");
  // At the socket: the aggregator got keys and masked inputs from the four others only, and was told why not.
  CHECK(line.at("secagg").at("survivors").at("advertised") == 4);
  CHECK(line.at("secagg").at("survivors").at("masked") == 4);
  std::map<std::string, std::string> dropped;
  for (const auto& d : line.at("dropped")) dropped[d.at("client")] = d.at("reason");
  REQUIRE(dropped.size() == 2);
  CHECK(dropped.at("client-5").find("ERROR_CODE_PRIVACY_REFUSED") != std::string::npos);
  CHECK(dropped.at("client-6").find("ERROR_CODE_PRIVACY_REFUSED") != std::string::npos);
  CHECK(string_set(line.at("participants")) == std::set<std::string>{"client-1", "client-2", "client-3", "client-4"});
  // The refusing devices shared nothing; the others recorded their own epsilon, which matches the aggregator's.
  CHECK(read_ledger(dir / "client-5").empty());
  CHECK(read_ledger(dir / "client-6").empty());
  const double stated = line.at("privacy").at("epsilon");
  for (int i = 1; i <= 4; ++i) {
    const auto ledger = read_ledger(dir / ("client-" + std::to_string(i)));
    INFO("client-" << i << " ledger: " << nlohmann::json(ledger).dump());
    REQUIRE(ledger.size() == 2);  // "sending" (with its RDP) before the masked input, then the outcome
    CHECK(ledger[0].at("outcome") == "sending");
    CHECK(ledger[0].at("privacy").contains("rdp"));
    CHECK(ledger[1].at("outcome") == "completed");
    const auto& p = ledger[1].at("privacy");
    CHECK(p.at("mode") == "distributed");
    CHECK(p.at("noise_multiplier").get<double>() == Approx(0.5).epsilon(1e-3));
    CHECK(p.at("epsilon").get<double>() == Approx(stated).epsilon(1e-9));
    CHECK(p.at("epsilon_stated").get<double>() == Approx(stated).epsilon(1e-12));
  }
}

}  // namespace sotto::test
