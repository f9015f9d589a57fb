// RoundCoordinator's check-in: hellos admitted to the forming cohort, or to the waiting room while a round trains,
// or told to retry; the check-in window opening once the last round is recorded (round_coordinator.h).
#include "aggregator/round_coordinator.h"

#include <algorithm>

namespace sotto::aggregator {

std::string RoundCoordinator::client_id(ConnectionId conn) const {
  if (auto it = cohort_.find(conn); it != cohort_.end()) return it->second.client_id;
  if (auto it = waiting_.find(conn); it != waiting_.end()) return it->second.client_id;
  return {};
}

bool RoundCoordinator::has_client(const std::string& client_id) const {
  for (const auto& [conn, m] : cohort_) {
    if (m.client_id == client_id) return true;
  }
  for (const auto& [conn, m] : waiting_) {
    if (m.client_id == client_id) return true;
  }
  return false;
}

std::uint32_t RoundCoordinator::pending() const {
  return static_cast<std::uint32_t>(
      std::count_if(cohort_.begin(), cohort_.end(), [](const auto& kv) { return !kv.second.uploaded; }));
}

Actions RoundCoordinator::on_hello(ConnectionId conn, const std::string& client_id, TimePoint now,
                                   double max_clip_norm, bool accuracy_histograms, bool noised_histograms) {
  Actions out;
  if (phase_ == Phase::kFinished) {
    out.push_back(action::SendFinished{conn, completed_rounds_});
    return out;
  }
  if (cohort_.count(conn) || waiting_.count(conn)) {
    reject_stranger(conn, "hello sent twice on one connection", now, out);
    return out;
  }
  if (options_.exclude_after_offences > 0) {
    const auto it = offences_.find(client_id);
    if (it != offences_.end() && it->second >= options_.exclude_after_offences) {
      out.push_back(action::Reject{conn, v1::ERROR_CODE_EXCLUDED,
                                   "client '" + client_id + "' is excluded: convicted " + std::to_string(it->second) +
                                       " times of secure aggregation offences (rounds.exclude_after_offences = " +
                                       std::to_string(options_.exclude_after_offences) +
                                       "); the operator must lift the exclusion"});
      return out;
    }
  }
  if (has_client(client_id)) {
    out.push_back(action::Reject{conn, v1::ERROR_CODE_DUPLICATE_CLIENT,
                                 "client '" + client_id + "' is already connected; close the other connection first"});
    return out;
  }
  if (phase_ == Phase::kCheckIn && cohort_.size() < options_.cohort_target) {
    cohort_[conn] = Member{client_id, max_clip_norm, accuracy_histograms, noised_histograms};
    out.push_back(action::Admit{conn, round_id_});
    if (cohort_.size() == options_.cohort_target) start_training(now, out);
    return out;
  }
  if ((phase_ == Phase::kTraining || phase_ == Phase::kRecording) && waiting_.size() < options_.cohort_target) {
    // The waiting room never holds more than a cohort, so its clients are sure of a place in the next round.
    waiting_[conn] = Member{client_id, max_clip_norm, accuracy_histograms, noised_histograms};
    out.push_back(action::Admit{conn, phase_ == Phase::kTraining ? round_id_ + 1 : round_id_});
    return out;
  }
  out.push_back(action::RetryLater{conn, options_.retry_delay,
                                   "round " + std::to_string(round_id_) + " has its cohort; come back later"});
  return out;
}

void RoundCoordinator::open_checkin(TimePoint now, Actions& out) {
  if (!budget_allows_full_cohort(out)) return;
  phase_ = Phase::kCheckIn;
  cohort_.clear();
  report_ = RoundReport{};
  report_.round_id = round_id_;
  weighted_loss_ = weighted_accuracy_ = 0;
  checkin_opened_ = now;
  checkin_deadline_ = now + options_.checkin_window;
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& [conn, m] : waiting) cohort_[conn] = m;  // admitted when they arrived
  if (cohort_.size() == options_.cohort_target) start_training(now, out);
}

}  // namespace sotto::aggregator
