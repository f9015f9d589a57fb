// RoundCoordinator's differential privacy: a round's charge planned against the budget at check-in and at the
// task, debited before the unmask requests, reported in the round's record, and the run stopped when the budget
// allows no more. The accountant itself is PrivacyBudget's (privacy_budget.h).
#include "aggregator/round_coordinator.h"

#include "common/secagg/update_vector.h"
#include "common/util/short_number.h"

namespace sotto::aggregator {

// A full cohort's round must fit the budget, or no check-in opens (plan_privacy checks again with the cohort that
// came).
bool RoundCoordinator::budget_allows_full_cohort(Actions& out) {
  if (!budget_.enabled()) return true;
  auto planned = budget_.plan(round_id_, options_.cohort_target, private_dimension(), options_.evaluation_bins);
  if (auto* refusal = std::get_if<PlanRefusal>(&planned); refusal && refusal->over_budget) {
    stop_for_budget(refusal->why, out);
    return false;
  }
  return true;
}

bool RoundCoordinator::plan_privacy(TimePoint now, Actions& out, std::uint32_t histogram_bins) {
  const auto& o = options_.privacy;
  const auto clients = o.expected_clients > 0 ? o.expected_clients : static_cast<std::uint32_t>(cohort_.size());
  auto planned = budget_.plan(round_id_, clients, private_dimension(), histogram_bins);
  if (auto* refusal = std::get_if<PlanRefusal>(&planned)) {
    if (refusal->over_budget) {
      stop_for_budget(refusal->why, out);
    } else {
      close_round(now, false, refusal->why, out);
    }
    return false;
  }
  charge_ = std::move(std::get<RoundCharge>(planned));
  return true;
}

// The charge goes out before the unmask requests in the same batch: the server writes it durably first.
void RoundCoordinator::debit_privacy(Actions& out) {
  out.push_back(action::DebitPrivacy{*charge_});
  budget_.debit(*charge_);
  report_privacy();
  report_.privacy->charged = true;
}

void RoundCoordinator::report_privacy() {
  const auto& d = charge_->ddg;
  const auto spent = budget_.spent();
  const auto& o = options_.privacy;
  const double q = budget_.amplifying_rate();
  std::string sampling = kNoAmplification;
  if (o.mode == PrivacyMode::kLocal) {
    sampling = kLocalNoAmplification;
  } else if (q < 1) {
    sampling = "poisson, q = " + util::short_number(q) +
               ": users drawn at random, secretly from those who see only the models (every draw charged, those "
               "too small to run included); none against the aggregator";
  }
  report_.privacy = RoundReport::Privacy{privacy_mode_name(o.mode), d.clip_norm, d.noise_multiplier, o.delta, d.bits,
                                         charge_->clients, o.min_survivors, d.honest, d.scale, d.l2_bound,
                                         d.local_stddev, d.dimension, false, spent.epsilon, spent.order,
                                         budget_.spent_released().epsilon, q,
                                         budget_.skipped_draws_charged(), sampling,
                                         options_.secure_sum_length > 0 ? options_.secure_sum_bound
                                                                        : dp::ContributionBound{}};
  if (charge_->histogram) {
    auto& p = *report_.privacy;
    p.histogram_bins = static_cast<std::uint32_t>(charge_->histogram->dimension / 2);
    p.histogram_noise_multiplier = charge_->histogram->noise_multiplier;
    p.histogram_local_stddev = charge_->histogram->local_stddev;
  }
  if (charge_->count_weight > 0) {
    auto& p = *report_.privacy;
    p.clip_norm = charge_->update_clip_norm;
    p.mechanism_clip_norm = d.clip_norm;
    p.count_weight = charge_->count_weight;
    p.next_clip_norm = clip_norm_;
  }
}

Actions RoundCoordinator::abandon_round(const std::string& reason, TimePoint now) {
  Actions out;
  if (phase_ == Phase::kTraining) close_round(now, false, reason, out);
  return out;
}

void RoundCoordinator::charge_skipped_draw(std::uint32_t expected_clients) {
  budget_.charge_skipped_draw(expected_clients, private_dimension());
}

// What a round's mechanism covers: the secure sum's integers, or the model's floating-point parameters.
std::uint64_t RoundCoordinator::private_dimension() const {
  return options_.secure_sum_length > 0 ? options_.secure_sum_length : secagg::floating_length(*global_);
}

// The budget does not allow this round: the run ends here, as if rounds.total were reached (nothing was charged).
void RoundCoordinator::stop_for_budget(const std::string& why, Actions& out) {
  budget_spent_ = why;
  phase_ = Phase::kFinished;
  for (const auto& [conn, m] : cohort_) out.push_back(action::SendFinished{conn, completed_rounds_});
  for (const auto& [conn, id] : waiting_) out.push_back(action::SendFinished{conn, completed_rounds_});
  cohort_.clear();
  waiting_.clear();
  sum_.clear();
}

}  // namespace sotto::aggregator
