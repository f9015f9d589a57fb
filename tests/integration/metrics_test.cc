// The operators' endpoint against real components: the sotto-aggregator binary serves /metrics over HTTPS during a
// two-round run with real sotto-client processes over mutual TLS, a real Prometheus server (Debian's
// `prometheus`, started here on a free loopback port with a generated config) scrapes it with the bearer token,
// and the test asks Prometheus's own query API for the rounds' values. /healthz, /readyz and a request without the
// token are checked directly.
#include <catch2/catch.hpp>
#include <fstream>

#include "tests/support/test_support.h"

namespace sotto::test {

namespace {

constexpr const char* kToken = "metrics-token-0123456789abcdef";

// The HTTPS status of a GET, with the bearer token or without it (python3's urllib, trusting the test CA).
int https_status(const Pki& pki, std::uint16_t port, const std::string& path, bool with_token) {
  const std::string headers = with_token ? std::string("{'Authorization': 'Bearer ") + kToken + "'}" : "{}";
  const std::string program =
      "import ssl, urllib.request as u, urllib.error as e\n"
      "c = ssl.create_default_context(cafile='" + pki.ca().string() + "')\n"
      "try:\n"
      "  print(u.urlopen(u.Request('https://127.0.0.1:" + std::to_string(port) + path + "', headers=" + headers +
      "), timeout=5, context=c).status)\n"
      "except e.HTTPError as x:\n"
      "  print(x.code)\n";
  return static_cast<int>(python3_number(program));
}

// The value of a PromQL instant query's first sample, -1 when it has none, -2 when Prometheus does not answer.
double prometheus_value(std::uint16_t port, const std::string& query) {
  const std::string program =
      "import json, urllib.parse as p, urllib.request as u\n"
      "try:\n"
      "  r = json.load(u.urlopen('http://127.0.0.1:" + std::to_string(port) + "/api/v1/query?query=' + p.quote(" +
      nlohmann::json(query).dump() + "), timeout=5))\n"
      "  res = r['data']['result']\n"
      "  print(res[0]['value'][1] if res else -1)\n"
      "except OSError:\n"
      "  print(-2)\n";
  return python3_number(program);
}

}  // namespace

TEST_CASE("a real Prometheus scrapes the aggregator's metrics during a run and its query API gives the rounds' values",
          "[integration][metrics]") {
  TempDir dir("metrics");
  const Pki pki = make_pki(dir / "pki", 3);
  AggregatorOptions agg = fixed_cohort_options(dir.path(), pki, 2, 3);
  agg.linger_s = 4;  // Prometheus scrapes every second: it sees the last round before the daemon stops
  agg.extra_toml = std::string("[http]\nenabled = true\nport = 0\ntls = true\nbearer_token = \"") + kToken + "\"\n";
  auto aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
  const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  const std::uint16_t http_port = wait_for_http_port(agg.state_dir);
  REQUIRE(http_port != 0);

  CHECK(https_status(pki, http_port, "/healthz", true) == 200);
  CHECK(https_status(pki, http_port, "/metrics", false) == 401);  // the token is required
  CHECK(https_status(pki, http_port, "/nowhere", true) == 404);
  REQUIRE(wait_until([&] { return https_status(pki, http_port, "/readyz", true) == 200; }, 60s));

  const std::uint16_t prometheus_port = pick_free_port();
  write_file(dir / "prometheus.yml", "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sotto\n"
                                     "    scrape_interval: 1s\n    scheme: https\n    tls_config:\n      ca_file: " +
                                         pki.ca().string() + "\n    authorization:\n      credentials: " +
                                         std::string(kToken) + "\n    static_configs:\n      - targets: ['127.0.0.1:" +
                                         std::to_string(http_port) + "']\n");
  Process prometheus("prometheus",
                     {"/usr/bin/prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
                      "--storage.tsdb.path=" + (dir / "tsdb").string(),
                      "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port)},
                     dir / "prometheus.log");
  const bool scraping =
      wait_until([&] { return prometheus_value(prometheus_port, "up{job=\"sotto\"}") == 1; }, 60s, 200ms);
  INFO("prometheus log:\n" << prometheus.log_text());
  REQUIRE(scraping);

  auto clients = start_mtls_clients(pki, 3, port, dir.path(), 200);
  for (auto& c : clients) {
    INFO(c->name() << " log:\n" << c->log_text());
    REQUIRE(c->wait_for_exit(180s) == 0);
  }
  REQUIRE(aggregator->wait_for_exit(60s) == 0);

  // What Prometheus stored (max over the run: the target is gone now).
  const auto over_run = [&](const std::string& series) {
    return prometheus_value(prometheus_port, "max_over_time(" + series + "[10m])");
  };
  CHECK(over_run("sotto_rounds_total{outcome=\"completed\"}") == 2);
  CHECK(over_run("sotto_rounds_total{outcome=\"abandoned\"}") == 0);
  CHECK(over_run("sotto_last_round{value=\"completed_rounds\"}") == 2);
  CHECK(over_run("sotto_last_round{value=\"survivors\"}") == 3);
  CHECK(over_run("sotto_last_round{value=\"round_id\"}") == 2);
  CHECK(over_run("sotto_open_connections") >= 3);
  CHECK(over_run("sotto_received_bytes_total") > 3 * 300'000);  // three updates of the ~321 KB model, twice
  CHECK(over_run("sotto_sent_bytes_total") > 3 * 300'000);
  CHECK(over_run("sotto_phase_seconds_count{phase=\"training\"}") == 2);
  CHECK(over_run("sotto_connections_refused_total{reason=\"unauthenticated\"}") == -1);  // nobody was refused
}

}  // namespace sotto::test
