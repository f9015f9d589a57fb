// The status page: one self-contained HTML page (no scripts, fonts or style sheets from elsewhere) that a person
// opens at /status to see where the run stands — the round and its phase, how far the cohort has got, and a chart
// of test accuracy and loss per round drawn as inline SVG from rounds.jsonl's lines. It reloads itself every few
// seconds (a meta refresh). A pure function of its inputs, so it is tested without a server.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aggregator/round_coordinator.h"

namespace sotto::aggregator {

inline constexpr int kStatusRefreshSeconds = 5;

// `progress` is null while the daemon starts (the checkpoint not yet checked). `rounds` are rounds.jsonl's lines,
// oldest first; the table shows the last 20 of them and the chart every one.
std::string render_status_page(const RoundCoordinator::Progress* progress, const std::vector<nlohmann::json>& rounds);

}  // namespace sotto::aggregator
