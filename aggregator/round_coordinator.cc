#include "aggregator/round_coordinator.h"

#include <algorithm>
#include <cmath>

#include "aggregator/refusal.h"
#include "common/model/clipping.h"
#include "common/secagg/update_vector.h"
#include "common/util/error.h"
#include "common/util/seed_mix.h"

namespace sotto::aggregator {

RoundCoordinator::RoundCoordinator(CoordinatorOptions options, CoordinatorStart start,
                                   std::unique_ptr<Strategy> strategy)
    : options_(std::move(options)),
      strategy_(std::move(strategy)),
      sum_(*strategy_, options_.reproducible_aggregation, options_.stopwatch),
      global_(std::make_shared<const model::ModelParameters>(std::move(start.global_model))),
      round_id_(start.next_round_id),
      completed_rounds_(start.completed_rounds),
      offences_(std::move(start.offences)),
      budget_(options_.privacy, options_.secure.bits, options_.secure.corruption_rate, options_.clip_norm,
              std::move(start.privacy_rdp),
              options_.secure_sum_length > 0 ? std::optional(options_.secure_sum_bound) : std::nullopt),
      clip_norm_(start.clip_norm > 0 ? start.clip_norm : options_.clip_norm) {
  if (options_.cohort_target == 0) throw Error("cohort_target must be at least 1");
  if (options_.cohort_min == 0 || options_.cohort_min > options_.cohort_target) {
    throw Error("cohort_min must be between 1 and cohort_target (" + std::to_string(options_.cohort_target) + ")");
  }
  if (options_.secure.enabled && !(options_.clip_norm > 0)) {
    throw Error("secure aggregation needs a positive clip_norm (privacy.clip_norm): it bounds what each client adds");
  }
  if (options_.privacy.mode == PrivacyMode::kDistributed && !options_.secure.enabled) {
    throw Error("privacy.mode = \"distributed\" needs secure aggregation: each noise share protects only inside a "
                "secure sum (use \"central\" or \"local\" for plain rounds)");
  }
  if (budget_.enabled() && !(options_.clip_norm > 0)) {
    throw Error("differential privacy needs a positive privacy.clip_norm: it bounds each user's influence");
  }
  if (budget_.enabled() && options_.secure_sum_length > 0 && !options_.secure_sum_bound.bounded()) {
    throw Error("a private secure sum needs a contribution bound (task.secure_sum_linf_bound or "
                "task.secure_sum_l1_bound): it is the mechanism's sensitivity");
  }
  if (options_.privacy.adaptive_clipping.enabled &&
      (!budget_.enabled() || options_.privacy.mode == PrivacyMode::kLocal || options_.secure_sum_length > 0)) {
    throw Error("privacy.adaptive_clipping needs a training run under privacy.mode \"distributed\" or \"central\": "
                "the clipped-count bits are summed under the round's noise");
  }
  budget_.set_clip_norm(clip_norm_);
  if (!start.strategy_state.empty()) strategy_->load_state(start.strategy_state, *global_);
  const std::uint64_t rounds_left = options_.total_rounds > completed_rounds_ ? options_.total_rounds - completed_rounds_ : 1;
  budget_.fit_noise_to_budget(rounds_left, options_.cohort_target, private_dimension(), options_.evaluation_bins);
}

Actions RoundCoordinator::start(TimePoint now) {
  Actions out;
  if (completed_rounds_ >= options_.total_rounds) {
    phase_ = Phase::kFinished;
  } else {
    open_checkin(now, out);
  }
  return out;
}

RoundCoordinator::Progress RoundCoordinator::progress() const {
  Progress p{phase_, round_id_, completed_rounds_, options_.total_rounds, cohort_.size(), 0, waiting_.size(), {}};
  if (secure_) {
    p.secure_step = secure_->step();
    p.uploaded = secure_->remaining() - secure_->late().size();
  } else {
    p.uploaded = static_cast<std::size_t>(
        std::count_if(cohort_.begin(), cohort_.end(), [](const auto& m) { return m.second.uploaded; }));
  }
  return p;
}

// ---- training ----------------------------------------------------------------------------------------------------

void RoundCoordinator::start_training(TimePoint now, Actions& out) {
  phase_ = Phase::kTraining;
  training_started_ = now;
  training_deadline_ = now + options_.training_deadline;
  report_.checkin_seconds = seconds_between(checkin_opened_, now);
  report_.cohort = static_cast<std::uint32_t>(cohort_.size());
  std::vector<std::pair<ConnectionId, std::string>> members;
  for (const auto& [conn, m] : cohort_) members.emplace_back(conn, m.client_id);
  sum_.begin(*global_, members);
  action::SendTask task{{}, round_id_, options_.plan, global_, options_.training_deadline};
  task.plan.seed = util::mix64(options_.seed ^ util::mix64(round_id_));
  const double clip_norm = round_clip_norm();
  task.plan.clip_norm = clip_norm;
  for (const auto& [conn, m] : cohort_) task.conns.push_back(conn);
  if (options_.secure.enabled) {
    const bool secure_sum = options_.secure_sum_length > 0;
    const std::uint32_t bins = accuracy_bins(secure_sum);
    const std::uint64_t length = private_dimension() + 2ull * bins;
    std::optional<round::DistributedNoise> noise;
    if (budget_.enabled()) {
      if (!plan_privacy(now, out, bins)) return;
      if (cohort_.size() < options_.privacy.min_survivors) {  // charged as a draw (close_round), never unmasked
        close_round(now, false,
                    "only " + std::to_string(cohort_.size()) + " clients checked in, fewer than privacy.min_survivors = " +
                        std::to_string(options_.privacy.min_survivors) + ": no sum of fewer noise shares is unmasked",
                    out);
        return;
      }
      noise = round::DistributedNoise{charge_->ddg, charge_->rotation_seed, options_.privacy.min_survivors,
                                      charge_->epsilon.epsilon,
                                      options_.privacy.mode == PrivacyMode::kCentral ? round::NoiseSource::kAggregator
                                      : options_.privacy.mode == PrivacyMode::kLocal ? round::NoiseSource::kOwn
                                                                                    : round::NoiseSource::kShares,
                                      secure_sum, charge_->count_weight,
                                      charge_->histogram ? charge_->histogram->local_stddev : 0.0};
    }
    auto begun = SecureAggregationRound::begin(options_.secure, clip_norm, round_id_, members, length,
                                               !secure_sum, now, training_deadline_, std::move(noise), bins);
    if (auto* why = std::get_if<std::string>(&begun)) {  // nothing sent yet: abandon before any client trains
      close_round(now, false, "secure aggregation cannot run: " + *why, out);
      return;
    }
    secure_ = std::move(std::get<std::unique_ptr<SecureAggregationRound>>(begun));
    secure_work_ = {};
    task.secagg = secure_->assignment();
    task.secagg->bound = options_.secure_sum_bound;
    task.secure_sum = secure_sum;
  } else if (budget_.enabled()) {
    if (!plan_privacy(now, out)) return;
    round::DistributedNoise noise{charge_->ddg, charge_->rotation_seed, 1, charge_->epsilon.epsilon,
                                  options_.privacy.mode == PrivacyMode::kCentral ? round::NoiseSource::kAggregator
                                                                                : round::NoiseSource::kOwn,
                                  false, charge_->count_weight};
    plain_private_.emplace(noise);
    task.plain_noise = std::move(noise);
  }
  out.push_back(std::move(task));
}

double RoundCoordinator::round_clip_norm() {
  if (!options_.privacy.adaptive_clipping.enabled) return options_.clip_norm;
  announced_clip_ceiling_ = 0;
  for (const auto& [conn, m] : cohort_) {
    if (m.max_clip_norm > 0 && (announced_clip_ceiling_ == 0 || m.max_clip_norm < announced_clip_ceiling_)) {
      announced_clip_ceiling_ = m.max_clip_norm;
    }
  }
  const double clip = announced_clip_ceiling_ > 0 ? std::min(clip_norm_, announced_clip_ceiling_) : clip_norm_;
  budget_.set_clip_norm(clip);
  return clip;
}

std::size_t RoundCoordinator::max_update_bytes() const {
  return secure_ ? secure_->masked_input_bytes() : global_->total_bytes();
}

std::optional<secagg::RoundConfig> RoundCoordinator::secure_config() const {
  if (!secure_) return std::nullopt;
  return secure_->assignment().config;
}

// What every update must satisfy, masked or not: this round, some examples, finite metrics.
std::optional<std::string> RoundCoordinator::check_update(const UpdateSummary& update) const {
  if (update.round_id != round_id_) {
    return "update is for round " + std::to_string(update.round_id) + ", the current round is " +
           std::to_string(round_id_);
  }
  if (update.num_examples == 0) return "update reports 0 training examples";
  if (!std::isfinite(update.train_loss) || !std::isfinite(update.train_accuracy) ||
      !std::isfinite(update.train_seconds)) {
    return "update's train_loss, train_accuracy or train_seconds is not finite";
  }
  if (const auto& e = update.local_evaluation) {
    const auto fraction = [](double a) { return a >= 0 && a <= 1; };  // false for NaN
    if (!fraction(e->global_accuracy) || !fraction(e->personal_accuracy)) {
      return "update's local evaluation has an accuracy outside [0, 1]";
    }
  }
  return std::nullopt;
}

// A plain update's delta: the model's layout, finite values.
std::optional<std::string> RoundCoordinator::check_delta(const ClientUpdate& update) const {
  if (auto mismatch = update.delta.layout_mismatch(*global_)) return "update does not match the model: " + *mismatch;
  if (auto bad = update.delta.first_non_finite()) return "update is not finite: " + *bad;
  return std::nullopt;
}

std::uint64_t RoundCoordinator::counted_examples(const std::string& client_id, const UpdateSummary& update) {
  if (update.num_examples <= options_.max_examples_per_client) return update.num_examples;
  report_.examples_capped.push_back(client_id);
  return options_.max_examples_per_client;
}

// An accepted update's statistics for the round's report, weighted by its counted examples.
void RoundCoordinator::count_update(const std::string& client_id, const UpdateSummary& update,
                                    std::uint64_t examples) {
  report_.examples += examples;
  report_.participants.push_back(client_id);
  weighted_loss_ += update.train_loss * static_cast<double>(examples);
  weighted_accuracy_ += update.train_accuracy * static_cast<double>(examples);
  report_.slowest_train_seconds = std::max(report_.slowest_train_seconds, update.train_seconds);
  // In a round that asked for accuracy histograms, figures sent in the clear as well are not used.
  const bool histograms = secure_ && secure_->assignment().evaluation_bins > 0;
  if (update.local_evaluation && !histograms) report_.local_evaluations.push_back(*update.local_evaluation);
}

// A member of the round now training is dropped like any other (its report entry, its secure seat) and the round
// or step closes if it was the last one awaited; a client waiting or checking in just leaves.
void RoundCoordinator::reject_stranger(ConnectionId conn, const std::string& what, TimePoint now, Actions& out) {
  out.push_back(action::Reject{conn, v1::ERROR_CODE_UNEXPECTED_MESSAGE, what});
  if (waiting_.erase(conn)) return;
  if (phase_ != Phase::kTraining || !cohort_.count(conn)) {
    cohort_.erase(conn);
    return;
  }
  if (cohort_.at(conn).uploaded) {
    cohort_.erase(conn);  // its update is already in the sum
  } else {
    drop(conn, what, "unexpected_message");
  }
  if (secure_) {
    maybe_close_step(now, out);
  } else {
    maybe_close_round(now, out);
  }
}

Actions RoundCoordinator::on_update(ConnectionId conn, ClientUpdate update, TimePoint now) {
  Actions out;
  auto it = cohort_.find(conn);
  if (phase_ != Phase::kTraining || it == cohort_.end()) {
    reject_stranger(conn, "update sent without a task: this connection is not training in a round", now, out);
    return out;
  }
  if (secure_) {
    reject_and_drop(conn, v1::ERROR_CODE_UNEXPECTED_MESSAGE,
                    "a plain update sent in a secure round, which takes the masked input", out);
    maybe_close_step(now, out);
    return out;
  }
  Member& member = it->second;
  if (member.uploaded) {
    out.push_back(action::Reject{conn, v1::ERROR_CODE_UNEXPECTED_MESSAGE, "update sent twice in one round"});
    cohort_.erase(it);  // its first update stays in the sum
    maybe_close_round(now, out);
    return out;
  }
  std::optional<std::string> invalid = check_update(update);
  const v1::ErrorCode code = update.round_id != round_id_ ? v1::ERROR_CODE_WRONG_ROUND : v1::ERROR_CODE_INVALID_UPDATE;
  if (!invalid) invalid = check_delta(update);
  if (invalid) {
    reject_and_drop(conn, code, *invalid, out);
    maybe_close_round(now, out);
    return out;
  }
  const std::uint64_t examples = counted_examples(member.client_id, update);
  count_update(member.client_id, update, examples);
  // What an honest client did already; enforced for those that did not. Not in local DP, where the update arrives
  // noised (its device clipped it before the noise, which clipping now would bias).
  const bool noised = plain_private_ && options_.privacy.mode == PrivacyMode::kLocal;
  const bool counted = plain_private_ && charge_->count_weight > 0;  // adaptive clipping, central
  const double clip = counted ? charge_->update_clip_norm : options_.clip_norm;
  float count_entry = 0;
  if (clip > 0 && !noised) {
    const double norm = model::clip_to_norm(update.delta, clip);
    if (model::exceeds_norm(norm, clip)) report_.clipped.push_back(member.client_id);
    // The device clipped it already: at the clip norm (to float rounding) it was clipped, below not. (A secure
    // round's device, which sees the norm before clipping, counts norm <= C as unclipped; the two differ only for
    // updates within 1e-5 of C.)
    if (counted) {
      const bool unclipped = norm < clip * (1 - 1e-5);
      count_entry = static_cast<float>((unclipped ? 0.5 : -0.5) * charge_->count_weight);
    }
  }
  if (plain_private_) {
    plain_private_->add(update.delta, count_entry);  // every update the same weight under DP
  } else {
    sum_.add(member.client_id, std::move(update.delta), options_.weighting == Weighting::kUniform ? 1 : examples);
  }
  member.uploaded = true;
  report_.survivors += 1;
  maybe_close_round(now, out);
  return out;
}

void RoundCoordinator::drop(ConnectionId conn, const std::string& reason, const std::string& cause) {
  if (secure_) secure_->leave(conn);  // whatever the cohort says: a seat never outlives its member
  auto it = cohort_.find(conn);
  if (it == cohort_.end()) return;
  report_.dropped.emplace_back(it->second.client_id, reason);
  ++report_.drop_causes[cause];
  cohort_.erase(it);
}

void RoundCoordinator::reject_and_drop(ConnectionId conn, v1::ErrorCode code, const std::string& message,
                                       Actions& out) {
  out.push_back(action::Reject{conn, code, message});
  drop(conn, message, error_code_label(code));
}

Actions RoundCoordinator::on_disconnect(ConnectionId conn, const std::string& reason, TimePoint now) {
  Actions out;
  if (waiting_.erase(conn)) return out;
  auto it = cohort_.find(conn);
  if (it == cohort_.end()) return out;
  if (phase_ == Phase::kCheckIn) {
    cohort_.erase(it);  // left before the round started: nothing lost
    return out;
  }
  if (secure_) {
    drop(conn, "disconnected: " + reason, "disconnected");  // the protocol recovers without it, or abandons
    maybe_close_step(now, out);
    return out;
  }
  if (it->second.uploaded) {
    cohort_.erase(it);  // its update is already in the sum
  } else {
    drop(conn, "disconnected: " + reason, "disconnected");
  }
  maybe_close_round(now, out);
  return out;
}

Actions RoundCoordinator::on_tick(TimePoint now) {
  Actions out;
  if (phase_ == Phase::kCheckIn && now >= checkin_deadline_) {
    if (cohort_.size() >= options_.cohort_min) {
      start_training(now, out);
    } else {
      checkin_deadline_ = now + options_.checkin_window;  // keep waiting for enough clients
    }
  } else if (phase_ == Phase::kTraining && secure_) {
    if (now >= secure_->deadline()) expire_step(now, out);
  } else if (phase_ == Phase::kTraining && now >= training_deadline_) {
    std::vector<ConnectionId> late;
    for (const auto& [conn, m] : cohort_) {
      if (!m.uploaded) late.push_back(conn);
    }
    for (ConnectionId conn : late) {
      out.push_back(action::Reject{conn, v1::ERROR_CODE_DEADLINE_EXCEEDED,
                                   "no update before the round's deadline; the round went on without it"});
      drop(conn, "deadline exceeded", "deadline_exceeded");
    }
    maybe_close_round(now, out);
  }
  return out;
}

void RoundCoordinator::maybe_close_round(TimePoint now, Actions& out) {
  if (phase_ != Phase::kTraining) return;
  // After every update or departure: add what has become addable.
  sum_.settle([this](ConnectionId conn) {
    auto m = cohort_.find(conn);
    return m != cohort_.end() && !m->second.uploaded;
  });
  const std::uint32_t pending_count = pending();
  if (report_.survivors + pending_count < options_.cohort_min) {
    close_round(now, false,
                "only " + std::to_string(report_.survivors + pending_count) + " clients can still contribute, " +
                    "fewer than cohort_min " + std::to_string(options_.cohort_min),
                out);
  } else if (pending_count == 0) {
    close_round(now, true, "", out);
  }
}

// ---- closing a round ---------------------------------------------------------------------------------------------

void RoundCoordinator::close_round(TimePoint now, bool completed, const std::string& abandon_reason, Actions& out) {
  report_.training_seconds = seconds_between(training_started_, now);
  report_.completed = completed;
  report_.abandon_reason = abandon_reason;
  if (report_.examples > 0) {
    report_.mean_train_loss = weighted_loss_ / static_cast<double>(report_.examples);
    report_.mean_train_accuracy = weighted_accuracy_ / static_cast<double>(report_.examples);
  }
  if (secure_) {
    report_.secagg = secure_->report();
    report_.secagg->summing_seconds = secure_work_.summing;
    report_.secagg->unmasking_seconds = secure_work_.unmasking;
    report_.secagg->decoding_seconds = secure_work_.decoding;
  }
  if (completed && plain_private_) {  // debited first: the server journals it before the model is released
    debit_privacy(out);
    sum_.add_mean(plain_private_->mean(charge_->clients, *global_));
    if (charge_->count_weight > 0) adapt_clip_norm(plain_private_->clipped_count_sum());
  }
  plain_private_.reset();
  if (charge_ && !report_.privacy) {  // not charged: no sum was unmasked, but a sampled draw still tells something
    budget_.charge_released(*charge_);
    report_privacy();
  }
  charge_.reset();
  if (completed && !options_.secure_sum_length) {
    global_ = std::make_shared<const model::ModelParameters>(sum_.finish(*global_));
  }
  if (completed) ++completed_rounds_;  // a secure-sum round has nothing to train: the sum is its result
  report_.aggregation_seconds = sum_.seconds();
  count_abandoned_streak(completed, abandon_reason);
  const bool finished = completed_rounds_ >= options_.total_rounds || gave_up_;
  for (const auto& [conn, m] : cohort_) {
    out.push_back(action::SendRoundResult{
        conn, round_id_, completed, report_.survivors, finished,
        completed ? "round completed"
                  : "round abandoned: " + abandon_reason + (gave_up_ ? "; the aggregator stops: too many in a row" : "")});
  }
  cohort_.clear();
  sum_.clear();
  secure_.reset();
  ++round_id_;
  out.push_back(action::RoundClosed{report_, global_, strategy_->name(),
                                    std::make_shared<const model::ModelParameters>(strategy_->save_state()),
                                    round_id_, completed_rounds_, offences_,
                                    budget_.enabled() ? budget_.spent_rdp() : std::vector<double>{},
                                    options_.privacy.adaptive_clipping.enabled ? clip_norm_ : 0.0});
  if (finished) {
    phase_ = Phase::kFinished;
    for (const auto& [conn, id] : waiting_) out.push_back(action::SendFinished{conn, completed_rounds_});
    waiting_.clear();
  } else {
    phase_ = Phase::kRecording;
  }
}

void RoundCoordinator::count_abandoned_streak(bool completed, const std::string& abandon_reason) {
  consecutive_abandoned_ = completed ? 0 : consecutive_abandoned_ + 1;
  if (options_.max_consecutive_abandoned == 0 || consecutive_abandoned_ < options_.max_consecutive_abandoned) return;
  gave_up_ = std::to_string(consecutive_abandoned_) + " rounds in a row were abandoned " +
             "(rounds.max_consecutive_abandoned = " + std::to_string(options_.max_consecutive_abandoned) +
             "), the last because " + abandon_reason +
             "; see the dropped clients' reasons in rounds.jsonl (a diverging plan, too few clients for "
             "rounds.cohort_min, ...), fix the cause and start the aggregator again: it resumes from its checkpoint";
}

Actions RoundCoordinator::on_round_recorded(TimePoint now) {
  Actions out;
  if (phase_ == Phase::kRecording) open_checkin(now, out);
  return out;
}

std::optional<TimePoint> RoundCoordinator::next_deadline() const {
  if (phase_ == Phase::kCheckIn) return checkin_deadline_;
  if (phase_ == Phase::kTraining) return secure_ ? secure_->deadline() : training_deadline_;
  return std::nullopt;
}

}  // namespace sotto::aggregator
