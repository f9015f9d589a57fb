// AggregatorMetrics: what the daemon tells Prometheus, kept in a prometheus-cpp registry and served as the
// Prometheus text format at /metrics (http_endpoint.h).
//
// Counters only ever grow over the process's life (Prometheus handles restarts); gauges describe the last round
// closed or the present. Every label takes values from a small fixed set (outcomes, phases, SecAgg+ steps, error
// codes' names, a few causes), never client ids or free text, so that the series stay few.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "aggregator/round_report.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
template <typename T>
class Family;
class Histogram;
}  // namespace prometheus

namespace sotto::aggregator {

class AggregatorMetrics {
 public:
  AggregatorMetrics();
  ~AggregatorMetrics();
  AggregatorMetrics(const AggregatorMetrics&) = delete;
  AggregatorMetrics& operator=(const AggregatorMetrics&) = delete;

  // A round closed (completed or abandoned); `completed_rounds` counts every completed round so far, across restarts.
  void round_closed(const RoundReport& report, std::uint64_t completed_rounds);
  void connection_opened();
  void connection_closed();
  // A connection refused or ended for breaking the rules: "connection_cap", "tls_handshake", or an error code's
  // label (refusal.h).
  void connection_refused(std::string_view reason);
  void bytes_received(std::size_t bytes);
  void bytes_sent(std::size_t bytes);

  // The registry's metrics in the Prometheus text exposition format (version 0.0.4).
  std::string text() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& rounds_;
  prometheus::Family<prometheus::Counter>& dropouts_;
  prometheus::Family<prometheus::Counter>& refused_;
  prometheus::Family<prometheus::Gauge>& last_round_;
  prometheus::Family<prometheus::Gauge>& secagg_step_clients_;
  prometheus::Family<prometheus::Histogram>& phase_seconds_;
  prometheus::Family<prometheus::Gauge>& privacy_;
  prometheus::Counter& bytes_in_;
  prometheus::Counter& bytes_out_;
  prometheus::Gauge& open_connections_;
};

}  // namespace sotto::aggregator
