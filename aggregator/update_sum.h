// UpdateSum: a round's accepted updates, added into the strategy, and the time that takes.
//
// With in_id_order (rounds.reproducible_aggregation) the updates are added in client-id order whatever order they
// arrive in, so that the new model does not depend on it (floating-point addition is not associative): an update
// is added as soon as every cohort member with a smaller id has sent its own or left, and held until then. Arriving
// in id order, nothing is held; in random order, about half the cohort's updates are at worst. Without it, updates
// are added as they arrive.
//
// The time spent in the strategy is read from an injected stopwatch (none: not measured), so the coordinator that
// owns this calls no clock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "aggregator/client_update.h"
#include "aggregator/coordinator_options.h"
#include "aggregator/strategy.h"

namespace sotto::aggregator {

class UpdateSum {
 public:
  using Stopwatch = std::function<TimePoint()>;
  // Whether the cohort member on this connection may still send an update.
  using StillExpected = std::function<bool(ConnectionId)>;

  UpdateSum(Strategy& strategy, bool in_id_order, Stopwatch stopwatch);

  // A new round: the strategy's begin_round, and the cohort (connection, client id) in any order.
  void begin(const model::ModelParameters& global, std::vector<std::pair<ConnectionId, std::string>> cohort);
  // An accepted update from `client_id` with its weight in the mean: added now, or held for its turn.
  void add(const std::string& client_id, model::ModelParameters delta, std::uint64_t weight);
  // After any update or departure: adds the held updates whose turn has come.
  void settle(const StillExpected& still_expected);
  // A secure round's result: the survivors' unweighted mean, added with weight 1.
  void add_mean(model::ModelParameters mean);
  // The round completed: adds what is still held (in id order) and returns the strategy's new global model.
  model::ModelParameters finish(const model::ModelParameters& global);
  // The round is over (completed or not): forgets what is held.
  void clear();

  // Updates received but not yet added, waiting for a smaller client id's.
  std::size_t held() const { return held_.size(); }
  // Seconds in the strategy this round, by the stopwatch.
  double seconds() const { return seconds_; }

 private:
  // Runs `work` and adds its duration to seconds_.
  template <typename Work>
  void timed(Work&& work);

  Strategy& strategy_;
  bool in_id_order_;
  Stopwatch stopwatch_;
  std::vector<std::pair<std::string, ConnectionId>> order_;  // in_id_order: the cohort sorted by client id
  std::size_t cursor_ = 0;                                   // how many of order_ are added or skipped
  std::map<std::string, std::pair<model::ModelParameters, std::uint64_t>> held_;  // client id -> delta, weight
  double seconds_ = 0;
};

}  // namespace sotto::aggregator
