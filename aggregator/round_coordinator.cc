#include "aggregator/round_coordinator.h"

#include <algorithm>
#include <cmath>

#include "common/util/error.h"

namespace sotto::aggregator {

namespace {

double seconds_between(TimePoint a, TimePoint b) {
  return std::chrono::duration<double>(b - a).count();
}

// SplitMix64: spreads (seed, round) into a per-round training seed. Not secret; reproducibility only.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

RoundCoordinator::RoundCoordinator(CoordinatorOptions options, CoordinatorStart start,
                                   std::unique_ptr<Strategy> strategy)
    : options_(std::move(options)),
      strategy_(std::move(strategy)),
      global_(std::make_shared<const model::ModelParameters>(std::move(start.global_model))),
      round_id_(start.next_round_id),
      completed_rounds_(start.completed_rounds) {
  if (options_.cohort_target == 0) throw Error("cohort_target must be at least 1");
  if (options_.cohort_min == 0 || options_.cohort_min > options_.cohort_target) {
    throw Error("cohort_min must be between 1 and cohort_target (" + std::to_string(options_.cohort_target) + ")");
  }
  if (!strategy_) throw Error("RoundCoordinator needs a strategy");
  if (!start.strategy_state.empty()) strategy_->load_state(start.strategy_state, *global_);
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

std::string RoundCoordinator::client_id(ConnectionId conn) const {
  if (auto it = cohort_.find(conn); it != cohort_.end()) return it->second.client_id;
  if (auto it = waiting_.find(conn); it != waiting_.end()) return it->second;
  return {};
}

bool RoundCoordinator::has_client(const std::string& client_id) const {
  for (const auto& [conn, m] : cohort_) {
    if (m.client_id == client_id) return true;
  }
  for (const auto& [conn, id] : waiting_) {
    if (id == client_id) return true;
  }
  return false;
}

std::uint32_t RoundCoordinator::pending() const {
  return static_cast<std::uint32_t>(
      std::count_if(cohort_.begin(), cohort_.end(), [](const auto& kv) { return !kv.second.uploaded; }));
}

Actions RoundCoordinator::on_hello(ConnectionId conn, const std::string& client_id, TimePoint now) {
  Actions out;
  if (phase_ == Phase::kFinished) {
    out.push_back(action::SendFinished{conn, completed_rounds_});
    return out;
  }
  if (cohort_.count(conn) || waiting_.count(conn)) {
    out.push_back(action::Reject{conn, v1::ERROR_CODE_UNEXPECTED_MESSAGE, "hello sent twice on one connection"});
    cohort_.erase(conn);
    waiting_.erase(conn);
    return out;
  }
  if (has_client(client_id)) {
    out.push_back(action::Reject{conn, v1::ERROR_CODE_DUPLICATE_CLIENT,
                                 "client '" + client_id + "' is already connected; close the other connection first"});
    return out;
  }
  if (phase_ == Phase::kCheckIn && cohort_.size() < options_.cohort_target) {
    cohort_[conn] = Member{client_id};
    out.push_back(action::Admit{conn, round_id_});
    if (cohort_.size() == options_.cohort_target) start_training(now, out);
    return out;
  }
  if ((phase_ == Phase::kTraining || phase_ == Phase::kRecording) && waiting_.size() < options_.cohort_target) {
    // The waiting room never holds more than a cohort, so its clients are sure of a place in the next round.
    waiting_[conn] = client_id;
    out.push_back(action::Admit{conn, phase_ == Phase::kTraining ? round_id_ + 1 : round_id_});
    return out;
  }
  out.push_back(action::RetryLater{conn, options_.retry_delay,
                                   "round " + std::to_string(round_id_) + " has its cohort; come back later"});
  return out;
}

void RoundCoordinator::open_checkin(TimePoint now, Actions& out) {
  phase_ = Phase::kCheckIn;
  cohort_.clear();
  report_ = RoundReport{};
  report_.round_id = round_id_;
  weighted_loss_ = weighted_accuracy_ = 0;
  checkin_opened_ = now;
  checkin_deadline_ = now + options_.checkin_window;
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& [conn, id] : waiting) cohort_[conn] = Member{id};  // admitted when they arrived
  if (cohort_.size() == options_.cohort_target) start_training(now, out);
}

void RoundCoordinator::start_training(TimePoint now, Actions& out) {
  phase_ = Phase::kTraining;
  training_started_ = now;
  training_deadline_ = now + options_.training_deadline;
  report_.checkin_seconds = seconds_between(checkin_opened_, now);
  report_.cohort = static_cast<std::uint32_t>(cohort_.size());
  strategy_->begin_round(*global_);
  action::SendTask task{{}, round_id_, options_.plan, global_, options_.training_deadline};
  task.plan.seed = mix(options_.seed ^ mix(round_id_));
  for (const auto& [conn, m] : cohort_) task.conns.push_back(conn);
  out.push_back(std::move(task));
}

Actions RoundCoordinator::on_update(ConnectionId conn, ClientUpdate update, TimePoint now) {
  Actions out;
  auto it = cohort_.find(conn);
  if (phase_ != Phase::kTraining || it == cohort_.end()) {
    out.push_back(action::Reject{conn, v1::ERROR_CODE_UNEXPECTED_MESSAGE,
                                 "update sent without a task: this connection is not training in a round"});
    if (waiting_.erase(conn) == 0 && it != cohort_.end()) cohort_.erase(it);
    return out;
  }
  Member& member = it->second;
  if (member.uploaded) {
    out.push_back(action::Reject{conn, v1::ERROR_CODE_UNEXPECTED_MESSAGE, "update sent twice in one round"});
    cohort_.erase(it);  // its first update stays in the sum
    maybe_close_round(now, out);
    return out;
  }
  std::optional<std::string> invalid;
  v1::ErrorCode code = v1::ERROR_CODE_INVALID_UPDATE;
  if (update.round_id != round_id_) {
    code = v1::ERROR_CODE_WRONG_ROUND;
    invalid = "update is for round " + std::to_string(update.round_id) + ", the current round is " +
              std::to_string(round_id_);
  } else if (update.num_examples == 0) {
    invalid = "update reports 0 training examples";
  } else if (auto mismatch = update.delta.layout_mismatch(*global_)) {
    invalid = "update does not match the model: " + *mismatch;
  } else if (auto bad = update.delta.first_non_finite()) {
    invalid = "update is not finite: " + *bad;
  } else if (!std::isfinite(update.train_loss) || !std::isfinite(update.train_accuracy) ||
             !std::isfinite(update.train_seconds)) {
    invalid = "update's train_loss, train_accuracy or train_seconds is not finite";
  }
  if (invalid) {
    report_.dropped.emplace_back(member.client_id, *invalid);
    out.push_back(action::Reject{conn, code, *invalid});
    cohort_.erase(it);
    maybe_close_round(now, out);
    return out;
  }
  const auto t0 = std::chrono::steady_clock::now();
  strategy_->accumulate(update.delta, update.num_examples);
  report_.aggregation_seconds += seconds_between(t0, std::chrono::steady_clock::now());
  member.uploaded = true;
  report_.survivors += 1;
  report_.examples += update.num_examples;
  report_.participants.push_back(member.client_id);
  weighted_loss_ += update.train_loss * static_cast<double>(update.num_examples);
  weighted_accuracy_ += update.train_accuracy * static_cast<double>(update.num_examples);
  report_.slowest_train_seconds = std::max(report_.slowest_train_seconds, update.train_seconds);
  maybe_close_round(now, out);
  return out;
}

void RoundCoordinator::drop(ConnectionId conn, const std::string& reason) {
  auto it = cohort_.find(conn);
  if (it == cohort_.end()) return;
  report_.dropped.emplace_back(it->second.client_id, reason);
  cohort_.erase(it);
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
  if (it->second.uploaded) {
    cohort_.erase(it);  // its update is already in the sum
  } else {
    drop(conn, "disconnected: " + reason);
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
  } else if (phase_ == Phase::kTraining && now >= training_deadline_) {
    std::vector<ConnectionId> late;
    for (const auto& [conn, m] : cohort_) {
      if (!m.uploaded) late.push_back(conn);
    }
    for (ConnectionId conn : late) {
      out.push_back(action::Reject{conn, v1::ERROR_CODE_DEADLINE_EXCEEDED,
                                   "no update before the round's deadline; the round went on without it"});
      drop(conn, "deadline exceeded");
    }
    maybe_close_round(now, out);
  }
  return out;
}

void RoundCoordinator::maybe_close_round(TimePoint now, Actions& out) {
  if (phase_ != Phase::kTraining) return;
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

void RoundCoordinator::close_round(TimePoint now, bool completed, const std::string& abandon_reason, Actions& out) {
  report_.training_seconds = seconds_between(training_started_, now);
  report_.completed = completed;
  report_.abandon_reason = abandon_reason;
  if (report_.examples > 0) {
    report_.mean_train_loss = weighted_loss_ / static_cast<double>(report_.examples);
    report_.mean_train_accuracy = weighted_accuracy_ / static_cast<double>(report_.examples);
  }
  if (completed) {
    const auto t0 = std::chrono::steady_clock::now();
    global_ = std::make_shared<const model::ModelParameters>(strategy_->finish_round(*global_));
    report_.aggregation_seconds += seconds_between(t0, std::chrono::steady_clock::now());
    ++completed_rounds_;
  }
  const bool finished = completed_rounds_ >= options_.total_rounds;
  for (const auto& [conn, m] : cohort_) {
    out.push_back(action::SendRoundResult{conn, round_id_, completed, report_.survivors, finished,
                                          completed ? "round completed" : "round abandoned: " + abandon_reason});
  }
  cohort_.clear();
  ++round_id_;
  out.push_back(action::RoundClosed{report_, global_, strategy_->name(),
                                    std::make_shared<const model::ModelParameters>(strategy_->save_state()),
                                    round_id_, completed_rounds_});
  if (finished) {
    phase_ = Phase::kFinished;
    for (const auto& [conn, id] : waiting_) out.push_back(action::SendFinished{conn, completed_rounds_});
    waiting_.clear();
  } else {
    phase_ = Phase::kRecording;
  }
}

Actions RoundCoordinator::on_round_recorded(TimePoint now) {
  Actions out;
  if (phase_ == Phase::kRecording) open_checkin(now, out);
  return out;
}

std::optional<TimePoint> RoundCoordinator::next_deadline() const {
  if (phase_ == Phase::kCheckIn) return checkin_deadline_;
  if (phase_ == Phase::kTraining) return training_deadline_;
  return std::nullopt;
}

}  // namespace sotto::aggregator
