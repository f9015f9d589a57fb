#include "aggregator/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <sstream>

namespace sotto::aggregator {

namespace {

// Phase and step durations: 10 ms to about 20 minutes.
const prometheus::Histogram::BucketBoundaries& duration_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 1200};
  return b;
}

}  // namespace

AggregatorMetrics::AggregatorMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      rounds_(prometheus::BuildCounter()
                  .Name("sotto_rounds_total")
                  .Help("Rounds closed, by outcome (completed or abandoned)")
                  .Register(*registry_)),
      dropouts_(prometheus::BuildCounter()
                    .Name("sotto_dropouts_total")
                    .Help("Cohort members dropped from a round, by cause (an error code's name, disconnected, ...)")
                    .Register(*registry_)),
      refused_(prometheus::BuildCounter()
                   .Name("sotto_connections_refused_total")
                   .Help("Connections refused or ended for breaking the rules, by reason")
                   .Register(*registry_)),
      last_round_(prometheus::BuildGauge()
                      .Name("sotto_last_round")
                      .Help("The last round closed: its id, cohort, survivors, examples; and the rounds completed")
                      .Register(*registry_)),
      secagg_step_clients_(prometheus::BuildGauge()
                               .Name("sotto_secagg_step_clients")
                               .Help("Clients that completed each SecAgg+ step in the last secure round")
                               .Register(*registry_)),
      phase_seconds_(prometheus::BuildHistogram()
                         .Name("sotto_phase_seconds")
                         .Help("How long each round phase (and each SecAgg+ step) took")
                         .Register(*registry_)),
      privacy_(prometheus::BuildGauge()
                   .Name("sotto_privacy_epsilon")
                   .Help("Epsilon spent so far at the configured delta: against the aggregator, and released")
                   .Register(*registry_)),
      bytes_in_(prometheus::BuildCounter()
                    .Name("sotto_received_bytes_total")
                    .Help("Bytes received from clients (TLS payload)")
                    .Register(*registry_)
                    .Add({})),
      bytes_out_(prometheus::BuildCounter()
                     .Name("sotto_sent_bytes_total")
                     .Help("Bytes queued to clients (TLS payload)")
                     .Register(*registry_)
                     .Add({})),
      open_connections_(prometheus::BuildGauge()
                            .Name("sotto_open_connections")
                            .Help("Client connections open now")
                            .Register(*registry_)
                            .Add({})) {
  rounds_.Add({{"outcome", "completed"}});
  rounds_.Add({{"outcome", "abandoned"}});
}

AggregatorMetrics::~AggregatorMetrics() = default;

void AggregatorMetrics::round_closed(const RoundReport& report, std::uint64_t completed_rounds) {
  rounds_.Add({{"outcome", report.completed ? "completed" : "abandoned"}}).Increment();
  for (const auto& [cause, count] : report.drop_causes) dropouts_.Add({{"cause", cause}}).Increment(count);
  last_round_.Add({{"value", "round_id"}}).Set(static_cast<double>(report.round_id));
  last_round_.Add({{"value", "cohort"}}).Set(report.cohort);
  last_round_.Add({{"value", "survivors"}}).Set(report.survivors);
  last_round_.Add({{"value", "examples"}}).Set(static_cast<double>(report.examples));
  last_round_.Add({{"value", "completed_rounds"}}).Set(static_cast<double>(completed_rounds));
  const auto observe = [&](const std::string& phase, double seconds) {
    phase_seconds_.Add({{"phase", phase}}, duration_buckets()).Observe(seconds);
  };
  observe("checkin", report.checkin_seconds);
  observe("training", report.training_seconds);
  if (report.completed) observe("aggregation", report.aggregation_seconds);
  if (report.secagg) {
    for (secagg::Step step : secagg::kSteps) {
      const std::string step_name(secagg::step_key(step));
      secagg_step_clients_.Add({{"step", step_name}}).Set(report.secagg->completed[step]);
      observe("secagg_" + step_name, report.secagg->seconds[step]);
    }
  }
  if (report.privacy && report.privacy->charged) {
    privacy_.Add({{"against", "aggregator"}}).Set(report.privacy->epsilon_spent);
    privacy_.Add({{"against", "released"}}).Set(report.privacy->epsilon_released);
  }
}

void AggregatorMetrics::connection_opened() { open_connections_.Increment(); }
void AggregatorMetrics::connection_closed() { open_connections_.Decrement(); }
void AggregatorMetrics::connection_refused(std::string_view reason) {
  refused_.Add({{"reason", std::string(reason)}}).Increment();
}
void AggregatorMetrics::bytes_received(std::size_t bytes) { bytes_in_.Increment(static_cast<double>(bytes)); }
void AggregatorMetrics::bytes_sent(std::size_t bytes) { bytes_out_.Increment(static_cast<double>(bytes)); }

std::string AggregatorMetrics::text() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace sotto::aggregator
