// The status page as a pure function: where the run stands, the rounds' table and the chart's two series, HTML
// escaping, and the page for a daemon still starting. Headless Chromium renders it from the real daemon in
// tests/integration/status_page_test.cc.
#include "aggregator/status_page.h"

#include <catch2/catch.hpp>

using namespace sotto::aggregator;

TEST_CASE("status page: the round, its phase, the cohort's progress, a table and a chart of the rounds",
          "[status]") {
  RoundCoordinator::Progress p;
  p.phase = RoundCoordinator::Phase::kTraining;
  p.round_id = 3;
  p.completed_rounds = 2;
  p.total_rounds = 5;
  p.cohort = 8;
  p.uploaded = 5;
  const std::vector<nlohmann::json> rounds = {
      {{"round", 1}, {"status", "completed"}, {"survivors", 8}, {"test_accuracy", 0.6818}, {"test_loss", 1.8342}},
      {{"round", 2}, {"status", "abandoned <late>"}, {"survivors", 1}},
      {{"round", 3}, {"status", "completed"}, {"survivors", 8}, {"test_accuracy", 0.8336}, {"test_loss", 0.5933},
       {"privacy", {{"epsilon", 12.5}}}}};
  const std::string html = render_status_page(&p, rounds);
  CHECK_THAT(html, Catch::Contains("<span id=\"round\">3</span>"));
  CHECK_THAT(html, Catch::Contains("<span id=\"phase\">training</span>"));
  CHECK_THAT(html, Catch::Contains("<span id=\"cohort\">8</span> clients, 5 updates in"));
  CHECK_THAT(html, Catch::Contains("<td class=\"accuracy\">0.6818</td>"));
  CHECK_THAT(html, Catch::Contains("<td class=\"accuracy\">0.8336</td>"));
  CHECK_THAT(html, Catch::Contains("<td class=\"accuracy\">-</td>"));  // round 2 has no evaluation
  CHECK_THAT(html, Catch::Contains("abandoned &lt;late&gt;"));
  CHECK_THAT(html, Catch::Contains("12.500"));
  CHECK_THAT(html, Catch::Contains("<meta http-equiv=\"refresh\""));
  CHECK_THAT(html, Catch::Contains("<svg id=\"chart\""));
  CHECK(html.find("<script") == std::string::npos);  // nothing to run, nothing fetched
  CHECK(html.find("http://") == html.find("http://www.w3.org/2000/svg"));
  // Two series of two evaluated rounds: accuracy from x = 40 (round 1) to x = 600 (round 3).
  CHECK_THAT(html, Catch::Contains("points=\"40.0,"));
  CHECK_THAT(html, Catch::Contains(" 600.0,"));
}

TEST_CASE("status page: while the daemon starts and before any evaluated round", "[status]") {
  const std::string html = render_status_page(nullptr, {});
  CHECK_THAT(html, Catch::Contains("Starting: checking the checkpoint"));
  CHECK_THAT(html, Catch::Contains("No evaluated round yet"));
}
