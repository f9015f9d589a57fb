// Scale: 200 sotto-client processes in one round against the real daemon over TLS on loopback, plain and with
// secure aggregation. The clients only wait instead of training (--simulate-training, so the load on the daemon
// is their connections, handshakes and uploads, not LibTorch); they authenticate by token. The round must take all
// 200 updates, and the daemon must not refuse any of them for its per-address limits, which are raised here since
// every client comes from 127.0.0.1.
#include <catch2/catch.hpp>

#include "tests/support/test_support.h"

namespace sotto::test {

TEST_CASE("200 clients in one round over TLS, plain and secure", "[integration][scale]") {
  constexpr int kClients = 200;
  const bool secure = GENERATE(false, true);
  TempDir dir(secure ? "scale-secure" : "scale-plain");
  const Pki pki = make_pki(dir / "pki", 1);
  AggregatorOptions agg;
  agg.state_dir = dir / "aggregator";
  agg.pki = pki;
  agg.port = pick_free_port();
  agg.total_rounds = 1;
  agg.cohort_target = kClients;
  agg.cohort_min = kClients;
  agg.checkin_window_s = 120;
  agg.log_level = "warn";
  agg.server_toml = "max_connections_per_address = 512\nmax_unauthenticated_per_address = 512\n";
  if (secure) agg.extra_toml = "[secure_aggregation]\nenabled = true\nstep_deadline_s = 120\n";
  auto token = [](int i) { return "a-load-test-token-" + std::to_string(1000 + i); };
  for (int i = 1; i <= kClients; ++i) agg.client_tokens["load-" + std::to_string(i)] = token(i);
  const fs::path config = write_aggregator_config(dir / "aggregator.toml", agg);
  auto aggregator = start_aggregator(config, dir / "aggregator.log");
  REQUIRE(wait_for_port(agg.state_dir, 60s, aggregator.get()) == agg.port);

  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 1; i <= kClients; ++i) {
    ClientOptions c;
    c.id = "load-" + std::to_string(i);
    c.port = agg.port;
    c.ca_file = pki.ca();
    c.token = token(i);
    c.log_level = "warn";
    c.connect_timeout_s = 30;
    c.give_up_after_s = 120;
    const fs::path file = write_client_config(dir / (c.id + ".toml"), c);
    clients.push_back(std::make_unique<Process>(
        c.id, std::vector<std::string>{bin_path("sotto-client").string(), "--config", file.string(),
                                       "--simulate-training", "0.5"},
        dir / (c.id + ".log")));
  }
  for (auto& c : clients) {
    INFO(c->name() << " log:\n" << c->log_text());
    REQUIRE(c->wait_for_exit(300s) == 0);
  }
  INFO("aggregator log:\n" << aggregator->log_tail(4000));
  REQUIRE(aggregator->wait_for_exit(60s) == 0);
  const auto rounds = read_jsonl(agg.state_dir / "rounds.jsonl");
  REQUIRE(rounds.size() == 1);
  CHECK(rounds[0].at("status") == "completed");
  CHECK(rounds[0].at("cohort") == kClients);
  CHECK(rounds[0].at("survivors") == kClients);
  CHECK(rounds[0].contains("secagg") == secure);
}

}  // namespace sotto::test
