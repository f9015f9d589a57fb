// The status page as a person sees it: headless Chromium (Debian's `chromium`) loads /status from the real
// sotto-aggregator after a two-round run with real clients over mutual TLS, while the daemon lingers; the test
// reads the rendered DOM for the round numbers and the accuracies that rounds.jsonl holds, and saves a screenshot
// to <build>/test-artifacts/status.png.
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

#include "tests/support/test_support.h"

namespace sotto::test {

namespace {

// Chromium's output: the rendered DOM with --dump-dom, a PNG with --screenshot.
std::string run_chromium(const fs::path& dir, const std::vector<std::string>& mode, const std::string& url) {
  std::vector<std::string> argv{"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                "--user-data-dir=" + (dir / "chromium-profile").string(), "--window-size=900,900"};
  argv.insert(argv.end(), mode.begin(), mode.end());
  argv.push_back(url);
  Process chromium("chromium", argv, dir / "chromium.log");
  INFO("chromium log:\n" << chromium.log_text());
  REQUIRE(chromium.wait_for_exit(60s) == 0);
  return chromium.log_text();
}

std::string fixed4(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

}  // namespace

TEST_CASE("headless Chromium renders the status page with the rounds and accuracies of rounds.jsonl",
          "[integration][status]") {
  TempDir dir("status-page");
  const Pki pki = make_pki(dir / "pki", 3);
  AggregatorOptions agg = fixed_cohort_options(dir.path(), pki, 2, 3);
  agg.evaluate = true;
  agg.eval_max_examples = 500;
  agg.linger_s = 15;  // the page is loaded while the daemon lingers after its last round
  agg.extra_toml = "[http]\nenabled = true\nport = 0\n";
  auto aggregator = start_aggregator(write_aggregator_config(dir / "aggregator.toml", agg), dir / "aggregator.log");
  const auto port = wait_for_port(agg.state_dir, 60s, aggregator.get());
  const std::uint16_t http_port = wait_for_http_port(agg.state_dir);
  REQUIRE(http_port != 0);

  auto clients = start_mtls_clients(pki, 3, port, dir.path(), 200);
  const fs::path rounds_file = agg.state_dir / "rounds.jsonl";
  REQUIRE(wait_until([&] { return read_jsonl(rounds_file).size() == 2; }, 180s));
  const auto rounds = read_jsonl(rounds_file);

  const std::string url = "http://127.0.0.1:" + std::to_string(http_port) + "/status";
  const std::string dom = run_chromium(dir.path(), {"--dump-dom"}, url);
  INFO("rendered DOM:\n" << dom);
  CHECK_THAT(dom, Catch::Contains("Finished after round <span id=\"round\">2</span>"));
  CHECK_THAT(dom, Catch::Contains("<span id=\"phase\">finished</span>"));
  CHECK_THAT(dom, Catch::Contains("<span id=\"completed\">2</span> of 2"));
  for (const auto& r : rounds) {
    INFO("round " << r.at("round"));
    REQUIRE(r.contains("test_accuracy"));
    CHECK_THAT(dom, Catch::Contains("<td class=\"id\">" + std::to_string(r.at("round").get<int>()) + "</td>"));
    CHECK_THAT(dom, Catch::Contains("<td class=\"accuracy\">" + fixed4(r.at("test_accuracy").get<double>()) + "</td>"));
  }
  CHECK_THAT(dom, Catch::Contains("<polyline"));

  const fs::path artifacts = fs::path(SOTTO_BIN_DIR).parent_path() / "test-artifacts";
  fs::create_directories(artifacts);
  const fs::path screenshot = artifacts / "status.png";
  fs::remove(screenshot);
  run_chromium(dir.path(), {"--screenshot=" + screenshot.string()}, url);
  REQUIRE(fs::exists(screenshot));
  std::ifstream png(screenshot, std::ios::binary);
  std::string magic(8, '\0');
  png.read(magic.data(), 8);
  CHECK(magic == "\x89PNG\r\n\x1a\n");
  CHECK(fs::file_size(screenshot) > 5000);

  for (auto& c : clients) REQUIRE(c->wait_for_exit(120s) == 0);
  REQUIRE(aggregator->wait_for_exit(60s) == 0);
}

}  // namespace sotto::test
