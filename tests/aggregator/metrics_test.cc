// AggregatorMetrics' exposition: the series a round's report puts there, by name and label, in Prometheus's text
// format (a real Prometheus reads it in tests/integration/metrics_test.cc).
#include "aggregator/metrics.h"

#include <catch2/catch.hpp>

using namespace sotto;
using namespace sotto::aggregator;

TEST_CASE("metrics: a round's report, connections and bytes appear as Prometheus series", "[metrics]") {
  AggregatorMetrics m;
  CHECK_THAT(m.text(), Catch::Contains("sotto_rounds_total{outcome=\"completed\"} 0"));
  RoundReport r;
  r.round_id = 7;
  r.completed = true;
  r.cohort = 5;
  r.survivors = 4;
  r.training_seconds = 1.5;
  r.drop_causes = {{"deadline_exceeded", 1}};
  r.secagg = RoundReport::SecAgg{};
  r.secagg->completed[secagg::Step::kMaskedInput] = 4;
  m.round_closed(r, 3);
  r.completed = false;
  r.drop_causes = {{"deadline_exceeded", 2}, {"disconnected", 1}};
  m.round_closed(r, 3);
  m.connection_opened();
  m.connection_opened();
  m.connection_closed();
  m.connection_refused("connection_cap");
  m.bytes_received(1000);
  m.bytes_sent(250);
  const std::string text = m.text();
  INFO(text);
  CHECK_THAT(text, Catch::Contains("sotto_rounds_total{outcome=\"completed\"} 1"));
  CHECK_THAT(text, Catch::Contains("sotto_rounds_total{outcome=\"abandoned\"} 1"));
  CHECK_THAT(text, Catch::Contains("sotto_dropouts_total{cause=\"deadline_exceeded\"} 3"));
  CHECK_THAT(text, Catch::Contains("sotto_dropouts_total{cause=\"disconnected\"} 1"));
  CHECK_THAT(text, Catch::Contains("sotto_last_round{value=\"round_id\"} 7"));
  CHECK_THAT(text, Catch::Contains("sotto_last_round{value=\"survivors\"} 4"));
  CHECK_THAT(text, Catch::Contains("sotto_last_round{value=\"completed_rounds\"} 3"));
  CHECK_THAT(text, Catch::Contains("sotto_secagg_step_clients{step=\"masked_input\"} 4"));
  CHECK_THAT(text, Catch::Contains("sotto_phase_seconds_count{phase=\"training\"} 2"));
  CHECK_THAT(text, Catch::Contains("sotto_phase_seconds_bucket{phase=\"training\",le=\"2.5\"} 2"));
  CHECK_THAT(text, Catch::Contains("sotto_open_connections 1"));
  CHECK_THAT(text, Catch::Contains("sotto_connections_refused_total{reason=\"connection_cap\"} 1"));
  CHECK_THAT(text, Catch::Contains("sotto_received_bytes_total 1000"));
  CHECK_THAT(text, Catch::Contains("sotto_sent_bytes_total 250"));
}
