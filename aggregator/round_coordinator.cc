#include "aggregator/round_coordinator.h"

#include <algorithm>
#include <cmath>

#include "common/secagg/parameters.h"
#include "common/secagg/update_vector.h"
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
  sum_order_.clear();
  sum_cursor_ = 0;
  if (options_.reproducible_aggregation) {
    for (const auto& [conn, m] : cohort_) sum_order_.emplace_back(m.client_id, conn);
    std::sort(sum_order_.begin(), sum_order_.end());
  }
  if (options_.secure.enabled) {
    try {
      start_secure_round(task);
    } catch (const Error& e) {  // nothing sent yet: abandon before any client trains
      close_round(now, false, std::string("secure aggregation cannot run: ") + e.what(), out);
      return;
    }
    step_started_ = now;
    step_deadline_ = training_deadline_;
  }
  out.push_back(std::move(task));
}

void RoundCoordinator::start_secure_round(action::SendTask& task) {
  const auto n = static_cast<std::uint32_t>(cohort_.size());
  if (n < 3) throw Error("it needs at least 3 clients in the cohort, and " + std::to_string(n) + " checked in");
  const auto& s = options_.secure;
  secagg::SecAggParameters p;
  if (s.complete_graph || n <= 4) {
    p = secagg::complete_graph_parameters(n, s.dropout_rate);
  } else {
    try {
      p = secagg::find_parameters(n, s.dropout_rate, s.corruption_rate);
    } catch (const Error&) {
      // Small cohorts cannot meet the finder's failure bounds with any degree: the complete graph (the original
      // SecAgg) is then the most robust choice, and it still refuses rates it cannot survive.
      p = secagg::complete_graph_parameters(n, s.dropout_rate);
    }
  }
  if (s.neighbours) p.k = std::min(s.neighbours, n - 1);
  if (s.threshold) p.t = s.threshold;
  if (p.t > p.k || 2 * p.t <= p.k) {
    throw Error("threshold " + std::to_string(p.t) + " must be above half of the " + std::to_string(p.k) +
                " neighbours and at most their number");
  }
  const std::uint64_t length =
      options_.secure_sum_length ? options_.secure_sum_length : secagg::floating_length(*global_);
  secagg::RoundConfig config{round_id_, n, p.k, p.t, length, s.bits};
  if (!options_.secure_sum_length) quantizer_.emplace(secagg::QuantizerParams{s.clip_norm, n, s.bits});
  session_ = std::make_unique<secagg::ServerSession>(config);
  secagg_step_ = 0;
  report_.secagg = RoundReport::SecAgg{n, p.k, p.t};
  action::SecAggAssignment assignment{config, s.clip_norm, {}};
  secagg::ClientIndex next = 0;
  secure_clients_.clear();
  for (auto& [conn, m] : cohort_) {
    m.index = next++;
    assignment.index[conn] = m.index;
    secure_clients_[m.index] = m.client_id;
  }
  task.secagg = std::move(assignment);
  task.secure_sum = options_.secure_sum_length > 0;
}

std::size_t RoundCoordinator::max_update_bytes() const {
  if (secure_round()) {
    const auto& config = session_->config();
    return secagg::masked_input_bytes(static_cast<std::size_t>(config.vector_length), config.bits);
  }
  return global_->total_bytes();
}

ConnectionId RoundCoordinator::conn_of(secagg::ClientIndex index) const {
  for (const auto& [conn, m] : cohort_) {
    if (m.index == index) return conn;
  }
  return 0;
}

void RoundCoordinator::reject_and_drop(ConnectionId conn, v1::ErrorCode code, const std::string& message,
                                       Actions& out) {
  out.push_back(action::Reject{conn, code, message});
  drop(conn, message);
}

RoundCoordinator::Member* RoundCoordinator::secure_member(ConnectionId conn, int step, const char* what,
                                                          Actions& out) {
  auto it = cohort_.find(conn);
  if (phase_ != Phase::kTraining || !secure_round() || it == cohort_.end()) {
    out.push_back(action::Reject{conn, v1::ERROR_CODE_UNEXPECTED_MESSAGE,
                                 std::string(what) + " sent outside a secure round this connection takes part in"});
    waiting_.erase(conn);
    if (it != cohort_.end()) cohort_.erase(it);
    return nullptr;
  }
  if (secagg_step_ != step || it->second.secagg_done != step - 1) {
    reject_and_drop(conn, v1::ERROR_CODE_UNEXPECTED_MESSAGE,
                    std::string(what) + " out of order: the round is at secure aggregation step " +
                        std::to_string(secagg_step_),
                    out);
    return nullptr;
  }
  return &it->second;
}

Actions RoundCoordinator::secure_step_message(ConnectionId conn, int step, const char* what, TimePoint now,
                                              const std::function<void(Member&)>& accept) {
  Actions out;
  if (Member* m = secure_member(conn, step, what, out)) {
    try {
      accept(*m);
      m->secagg_done = step;
    } catch (const Error& e) {
      reject_and_drop(conn, v1::ERROR_CODE_INVALID_UPDATE, e.what(), out);
    }
  }
  maybe_close_step(now, out);
  return out;
}

Actions RoundCoordinator::on_secagg_advertise(ConnectionId conn, const secagg::AdvertiseKeys& keys, TimePoint now) {
  return secure_step_message(conn, 0, "advertise keys", now, [&](Member& m) {
    session_->on_advertise(m.index, keys);
    ++report_.secagg->advertised;
  });
}

Actions RoundCoordinator::on_secagg_shares(ConnectionId conn, const std::vector<secagg::EncryptedShare>& shares,
                                           TimePoint now) {
  return secure_step_message(conn, 1, "encrypted shares", now, [&](Member& m) {
    session_->on_encrypted_shares(m.index, secagg::EncryptedShares{shares});
    ++report_.secagg->shared;
  });
}

Actions RoundCoordinator::on_secagg_unmask(ConnectionId conn, const secagg::UnmaskResponse& response, TimePoint now) {
  return secure_step_message(conn, 3, "unmask response", now, [&](Member& m) {
    session_->on_unmask_response(m.index, response);
    ++report_.secagg->unmasked;
  });
}

void RoundCoordinator::maybe_close_step(TimePoint now, Actions& out) {
  if (phase_ != Phase::kTraining || !secure_round()) return;
  if (cohort_.size() < options_.cohort_min) {
    close_round(now, false,
                "only " + std::to_string(cohort_.size()) + " clients remain, fewer than cohort_min " +
                    std::to_string(options_.cohort_min),
                out);
    return;
  }
  for (const auto& [conn, m] : cohort_) {
    if (m.secagg_done < secagg_step_) return;  // still waiting for someone
  }
  close_step(now, out);
}

void RoundCoordinator::close_step(TimePoint now, Actions& out) {
  auto& sa = *report_.secagg;
  sa.seconds[secagg_step_] = seconds_between(step_started_, now);
  const int step = secagg_step_;
  try {
    if (step == 0) {
      action::SendKeyDirectory dir{{}, session_->close_advertise()};
      for (const auto& [conn, m] : cohort_) dir.conns.push_back(conn);
      out.push_back(std::move(dir));
    } else if (step == 1) {
      for (auto& [index, shares] : session_->close_share_keys()) {
        out.push_back(action::SendShares{conn_of(index), std::move(shares.shares)});
      }
    } else if (step == 2) {
      for (auto& [index, request] : session_->close_masked_input()) {
        out.push_back(action::SendUnmaskRequest{conn_of(index), std::move(request)});
      }
    } else {
      const secagg::AggregationResult result = session_->close_unmasking();
      if (options_.secure_sum_length) {  // federated analytics: publish the sum and whose inputs are in it
        report_.secure_sum = result.sum;
        report_.participants.clear();
        for (auto index : result.survivors) report_.participants.push_back(secure_clients_.at(index));
        report_.survivors = static_cast<std::uint32_t>(result.survivors.size());
        close_round(now, true, "", out);
        return;
      }
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<double> mean = quantizer_->decode_sum(result.sum);
      for (double& v : mean) v /= static_cast<double>(result.survivors.size());
      // Every survivor's input is in the sum with equal weight: the strategy sees their unweighted mean.
      strategy_->accumulate(secagg::unflatten_floating(mean, *global_), 1);
      report_.aggregation_seconds += seconds_between(t0, std::chrono::steady_clock::now());
      report_.survivors = static_cast<std::uint32_t>(result.survivors.size());
      close_round(now, true, "", out);
      return;
    }
  } catch (const Error& e) {
    close_round(now, false, "secure aggregation step " + std::to_string(step) + " failed: " + e.what(), out);
    return;
  }
  secagg_step_ = step + 1;
  step_started_ = now;
  step_deadline_ = now + options_.secure.step_deadline;
}

// What every update must satisfy, masked or not: this round, some examples, finite metrics.
std::optional<std::string> RoundCoordinator::check_update(const ClientUpdate& update) const {
  if (update.round_id != round_id_) {
    return "update is for round " + std::to_string(update.round_id) + ", the current round is " +
           std::to_string(round_id_);
  }
  if (update.num_examples == 0) return "update reports 0 training examples";
  if (!std::isfinite(update.train_loss) || !std::isfinite(update.train_accuracy) ||
      !std::isfinite(update.train_seconds)) {
    return "update's train_loss, train_accuracy or train_seconds is not finite";
  }
  return std::nullopt;
}

// An accepted update's statistics for the round's report.
void RoundCoordinator::count_update(const std::string& client_id, const ClientUpdate& update) {
  report_.examples += update.num_examples;
  report_.participants.push_back(client_id);
  weighted_loss_ += update.train_loss * static_cast<double>(update.num_examples);
  weighted_accuracy_ += update.train_accuracy * static_cast<double>(update.num_examples);
  report_.slowest_train_seconds = std::max(report_.slowest_train_seconds, update.train_seconds);
}

Actions RoundCoordinator::on_update(ConnectionId conn, ClientUpdate update, TimePoint now) {
  if (secure_round() && phase_ == Phase::kTraining && cohort_.count(conn)) return on_masked_update(conn, update, now);
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
  std::optional<std::string> invalid = check_update(update);
  const v1::ErrorCode code = update.round_id != round_id_ ? v1::ERROR_CODE_WRONG_ROUND : v1::ERROR_CODE_INVALID_UPDATE;
  if (!invalid) {
    if (auto mismatch = update.delta.layout_mismatch(*global_)) {
      invalid = "update does not match the model: " + *mismatch;
    } else if (auto bad = update.delta.first_non_finite()) {
      invalid = "update is not finite: " + *bad;
    }
  }
  if (invalid) {
    report_.dropped.emplace_back(member.client_id, *invalid);
    out.push_back(action::Reject{conn, code, *invalid});
    cohort_.erase(it);
    maybe_close_round(now, out);
    return out;
  }
  count_update(member.client_id, update);
  if (options_.reproducible_aggregation) {
    held_updates_.emplace(member.client_id, std::move(update));  // summed in turn by maybe_close_round below
  } else {
    const auto t0 = std::chrono::steady_clock::now();
    strategy_->accumulate(update.delta, update.num_examples);
    report_.aggregation_seconds += seconds_between(t0, std::chrono::steady_clock::now());
  }
  member.uploaded = true;
  report_.survivors += 1;
  maybe_close_round(now, out);
  return out;
}

// A secure round's masked input (SecAgg+ step 2): checked like any update, then handed to the server session.
Actions RoundCoordinator::on_masked_update(ConnectionId conn, const ClientUpdate& update, TimePoint now) {
  Actions out;
  Member* m = secure_member(conn, 2, "masked input", out);
  if (!m) {
    maybe_close_step(now, out);
    return out;
  }
  std::optional<std::string> invalid = check_update(update);
  if (!invalid) {
    try {
      const auto& config = session_->config();
      const secagg::MaskedInput input{
          secagg::masked_input_words(update.delta, config.bits, static_cast<std::size_t>(config.vector_length))};
      session_->on_masked_input(m->index, input);
    } catch (const Error& e) {
      invalid = e.what();
    }
  }
  if (invalid) {
    reject_and_drop(conn, v1::ERROR_CODE_INVALID_UPDATE, *invalid, out);
  } else {
    m->secagg_done = 2;
    ++report_.secagg->masked;
    count_update(m->client_id, update);
  }
  maybe_close_step(now, out);
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
  if (secure_round()) {
    drop(conn, "disconnected: " + reason);  // the protocol recovers without it, or abandons below threshold
    maybe_close_step(now, out);
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
  } else if (phase_ == Phase::kTraining && secure_round()) {
    if (now < step_deadline_) return out;
    std::vector<ConnectionId> late;
    for (const auto& [conn, m] : cohort_) {
      if (m.secagg_done < secagg_step_) late.push_back(conn);
    }
    for (ConnectionId conn : late) {
      reject_and_drop(conn, v1::ERROR_CODE_DEADLINE_EXCEEDED,
                      "no answer before secure aggregation step " + std::to_string(secagg_step_) +
                          "'s deadline; the round went on without it",
                      out);
    }
    if (cohort_.size() < options_.cohort_min) {
      maybe_close_step(now, out);
    } else {
      close_step(now, out);
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

void RoundCoordinator::sum_in_order() {
  const auto t0 = std::chrono::steady_clock::now();
  while (sum_cursor_ < sum_order_.size()) {
    const auto& [client_id, conn] = sum_order_[sum_cursor_];
    if (auto held = held_updates_.find(client_id); held != held_updates_.end()) {
      strategy_->accumulate(held->second.delta, held->second.num_examples);
      held_updates_.erase(held);
    } else if (auto m = cohort_.find(conn); m != cohort_.end() && !m->second.uploaded) {
      break;  // its update may still come
    }
    ++sum_cursor_;  // summed, or left without an update
  }
  report_.aggregation_seconds += seconds_between(t0, std::chrono::steady_clock::now());
}

void RoundCoordinator::maybe_close_round(TimePoint now, Actions& out) {
  if (phase_ != Phase::kTraining) return;
  // After every update or departure: sum what has become summable.
  if (options_.reproducible_aggregation && !secure_round()) sum_in_order();
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
  if (completed && options_.secure_sum_length) {
    ++completed_rounds_;  // nothing to train: the sum is the round's result
  } else if (completed) {
    const auto t0 = std::chrono::steady_clock::now();
    // What is still held comes after every summed id (sum_in_order): adding it in id order completes the order.
    for (const auto& [client_id, held] : held_updates_) strategy_->accumulate(held.delta, held.num_examples);
    global_ = std::make_shared<const model::ModelParameters>(strategy_->finish_round(*global_));
    report_.aggregation_seconds += seconds_between(t0, std::chrono::steady_clock::now());
    ++completed_rounds_;
  }
  consecutive_abandoned_ = completed ? 0 : consecutive_abandoned_ + 1;
  if (options_.max_consecutive_abandoned > 0 && consecutive_abandoned_ >= options_.max_consecutive_abandoned) {
    gave_up_ = std::to_string(consecutive_abandoned_) + " rounds in a row were abandoned " +
               "(rounds.max_consecutive_abandoned = " + std::to_string(options_.max_consecutive_abandoned) +
               "), the last because " + abandon_reason +
               "; see the dropped clients' reasons in rounds.jsonl (a diverging plan, too few clients for "
               "rounds.cohort_min, ...), fix the cause and start the aggregator again: it resumes from its checkpoint";
  }
  const bool finished = completed_rounds_ >= options_.total_rounds || gave_up_;
  for (const auto& [conn, m] : cohort_) {
    out.push_back(action::SendRoundResult{
        conn, round_id_, completed, report_.survivors, finished,
        completed ? "round completed"
                  : "round abandoned: " + abandon_reason + (gave_up_ ? "; the aggregator stops: too many in a row" : "")});
  }
  cohort_.clear();
  held_updates_.clear();
  sum_order_.clear();
  session_.reset();
  quantizer_.reset();
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
  if (phase_ == Phase::kTraining) return secure_round() ? step_deadline_ : training_deadline_;
  return std::nullopt;
}

}  // namespace sotto::aggregator
