// A secure-aggregation insider against the real sotto-aggregator and sotto-client processes over mutual TLS (the
// hardening issue's item 5): one client sends a neighbour key shares that do not open. The neighbour accuses it,
// revealing only their pair's channel key, and stays; the aggregator convicts the insider — not the honest accuser
// — and the round completes without it and with the accuser; with rounds.exclude_after_offences = 1 the insider is
// refused from then on, and the next round completes with the honest clients alone.
#include <catch2/catch.hpp>

#include "tests/support/test_support.h"

namespace sotto::test {

TEST_CASE("a SecAgg insider sending shares that do not open is convicted and excluded and the rounds complete",
          "[integration][secagg][hardening]") {
  constexpr int kClients = 6;
  TempDir dir("secagg-insider");
  const Pki pki = make_pki(dir / "pki", kClients);
  AggregatorOptions agg;
  agg.state_dir = dir / "aggregator";
  agg.pki = pki;
  agg.total_rounds = 2;
  agg.cohort_target = kClients;
  agg.cohort_min = 3;
  agg.checkin_window_s = 4;
  agg.rounds_toml = "exclude_after_offences = 1\n";
  agg.extra_toml =
      "[secure_aggregation]\nenabled = true\ncomplete_graph = true\nthreshold = 3\nstep_deadline_s = 20\n"
      "[privacy]\nclip_norm = 100.0\n";
  auto aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
  const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 1; i <= kClients; ++i) {
    ClientOptions c = mtls_client_options(pki, i, port);
    c.num_shards = kClients;
    c.shard_index = static_cast<std::uint32_t>(i - 1);
    c.max_examples = 200;
    c.state_dir = dir / c.id;
    if (i == kClients) c.extra_toml = "[fault_injection]\ngarble_shares = 1\n";
    clients.push_back(start_client(c.id, write_client_config(dir / (c.id + ".toml"), c), dir / (c.id + ".log")));
  }
  for (int i = 0; i < kClients; ++i) {
    const auto code = clients[i]->wait_for_exit(180s);
    INFO(clients[i]->name() << " log:\n" << clients[i]->log_text());
    if (i + 1 == kClients) {
      CHECK(code != 0);  // refused for good once excluded
      CHECK(clients[i]->log_contains("fault injection: garbling"));
      CHECK(clients[i]->log_contains("excluded"));
    } else {
      REQUIRE(code == 0);
    }
  }
  REQUIRE(aggregator->wait_for_exit(60s) == 0);
  CHECK(aggregator->log_contains("convicted"));

  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  INFO("rounds.jsonl: " << nlohmann::json(rounds).dump());
  REQUIRE(rounds.size() == 2);
  const auto& first = rounds[0];
  REQUIRE(first.at("status") == "completed");
  CHECK(first.at("schema_version") == 5);
  const auto& convicted = first.at("secagg").at("convicted");
  REQUIRE(convicted.size() == 1);
  CHECK(convicted[0].at("client") == "client-6");
  CHECK(convicted[0].at("offence").get<std::string>().find("do not open") != std::string::npos);
  CHECK(convicted[0].at("input_counted") == false);
  const std::string accuser = convicted[0].at("accused_by");
  CHECK(accuser != "client-6");
  // Only the insider left the round; the accuser is among the five survivors.
  std::set<std::string> dropped;
  for (const auto& d : first.at("dropped")) dropped.insert(d.at("client").get<std::string>());
  CHECK(dropped == std::set<std::string>{"client-6"});
  CHECK(first.at("survivors") == kClients - 1);
  CHECK(first.at("secagg").at("survivors").at("unmasked") == kClients - 1);
  CHECK(string_set(first.at("participants")).count(accuser));

  const auto& second = rounds[1];
  CHECK(second.at("status") == "completed");
  CHECK_FALSE(second.at("secagg").contains("convicted"));
  CHECK_FALSE(string_set(second.at("participants")).count("client-6"));
  CHECK(second.at("survivors") == kClients - 1);
}

}  // namespace sotto::test
