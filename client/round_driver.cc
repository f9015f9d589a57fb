#include "client/round_driver.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <deque>

#include "client/fault_injection.h"
#include "common/codec/model_file.h"
#include "common/codec/model_frames.h"
#include "common/net/frame_io.h"
#include "common/round/message_codec.h"
#include "common/secagg/wire_codec.h"

namespace sotto::client {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

RoundDriver::RoundDriver(RoundDriverContext context, AggregatorLink& link) : context_(std::move(context)), link_(link) {}

asio::awaitable<void> RoundDriver::run(round::Task task, SessionResult& result, std::string& step) {
  step_ = &step;
  if (const auto cap = context_.config.limits.round_wall_time; cap.count() > 0) deadline_ = result.task_arrived + cap;
  round::Participant participant(
      {context_.config.client_id, context_.contribution, context_.config.privacy, context_.privacy_spent,
       context_.config.personal, context_.config.report_local_evaluation,
       context_.config.report_local_in_secure_sum},
      context_.random);
  std::deque<round::Output> queue;
  auto enqueue = [&](round::Outputs outputs) {
    for (auto& o : outputs) queue.push_back(std::move(o));
  };
  enqueue(participant.on_task(std::move(task), Clock::now()));
  v1::Envelope env;
  for (;;) {
    while (!queue.empty()) {
      round::Output output = std::move(queue.front());
      queue.pop_front();
      if (const auto* finish = std::get_if<round::out::Finish>(&output)) {
        conclude(participant, *finish, result);
        co_return;
      }
      leave_if_overdue(participant);
      enqueue(co_await carry_out(participant, std::move(output)));
    }
    co_await link_.read(env, context_.config.wait_timeout);
    if (ends_session(env, result, context_.emit)) {
      if (participant.record().sent || participant.step() == round::Participant::Step::kAdvertised ||
          participant.step() == round::Participant::Step::kShared) {
        record_in_ledger(participant.record(), "rejected");
      }
      co_return;
    }
    leave_if_overdue(participant);
    enqueue(deliver(participant, env));
  }
}

// One thing the participant asked for: train, or send a message. Returns what the participant says next.
asio::awaitable<round::Outputs> RoundDriver::carry_out(round::Participant& participant, round::Output output) {
  if (auto* fit = std::get_if<round::out::Fit>(&output)) co_return train(*fit, participant);
  link_.arm(context_.config.io_timeout);
  if (auto* keys = std::get_if<round::out::AdvertiseKeys>(&output)) {
    *step_ = "secure aggregation";
    co_await link_.write(round::to_envelope(*keys));
    vanish_if(context_.config, "advertise");
  } else if (auto* shares = std::get_if<round::out::ShareKeys>(&output)) {
    tamper_with_shares(context_.config, *shares);
    co_await link_.write(round::to_envelope(*shares));
    vanish_if(context_.config, "share_keys");
  } else if (auto* upload = std::get_if<round::out::Upload>(&output)) {
    charge_device(participant.record());
    tamper_with_upload(context_.config, *upload);
    co_await send_upload(*upload);
    if (participant.secure()) vanish_if(context_.config, "masked_input");
  } else if (auto* accuse = std::get_if<round::out::Accuse>(&output)) {
    spdlog::warn("round {}: reporting SecAgg+ neighbours whose shares do not open", participant.round_id());
    co_await link_.write(round::to_envelope(*accuse));
  } else if (auto* response = std::get_if<round::out::UnmaskResponse>(&output)) {
    co_await link_.write(round::to_envelope(*response));
  } else if (auto* error = std::get_if<round::out::ReportError>(&output)) {
    spdlog::warn("round {}: {}", participant.round_id(), error->message);
    co_await link_.write(round::to_envelope(*error));
  }
  *step_ = "waiting for the round's next step or result";
  co_return round::Outputs{};
}

std::string RoundDriver::overdue_reason() const {
  char cap[32];
  std::snprintf(cap, sizeof cap, "%g", std::chrono::duration<double>(context_.config.limits.round_wall_time).count());
  return std::string("the round has taken longer than limits.round_wall_time_s (") + cap + " s) since its task arrived";
}

// Only before the update has left: after it, the round's sum needs this device's answers to unmask it.
void RoundDriver::leave_if_overdue(const round::Participant& participant) {
  if (!deadline_ || Clock::now() < *deadline_ || participant.record().sent) return;
  const std::string reason = overdue_reason();
  record_in_ledger(participant.record(), "abandoned", reason);
  context_.emit({ClientEventKind::kRoundAbandoned, participant.round_id(), reason});
  throw TrainingStopped("left the round: " + reason);
}

// Under distributed DP the device debits its own accountant before its masked input leaves: the ledger's "sending"
// line carries the RDP (a crash after it over-counts, never under-counts).
void RoundDriver::charge_device(const round::ContributionRecord& r) {
  if (!r.privacy) return;
  if (context_.ledger) {
    const bool recorded = context_.consent.while_granted([&] {
      context_.ledger->append({r.round_id, "sending", r.num_examples, link_.bytes_sent(), link_.bytes_received(),
                               r.train_loss, r.update_l2_norm, r.secure, r.clip_norm, r.privacy, true});
    });
    if (!recorded) throw Error("consent was revoked: the masked input is not sent");
  }
  auto& spent = context_.privacy_spent;
  if (spent.empty()) spent.assign(r.privacy->rdp.size(), 0.0);
  for (std::size_t i = 0; i < spent.size(); ++i) spent[i] += r.privacy->rdp[i];
  spdlog::info("round {}: distributed DP: this device's own epsilon is now {:.4g} (the aggregator states {:.4g})",
               r.round_id, r.privacy->epsilon, r.privacy->epsilon_stated);
}

std::string local_model_file_name(std::uint64_t round_id) {
  return "local-round-" + std::to_string(round_id) + ".sotto";
}

namespace {

// Personal tensors that are not finite (a training that diverged, kept by an older version) would make every later
// round diverge too: they are neither kept nor used, and the device starts them again as on its first round.
bool usable_personal(const model::ModelParameters& tensors, const char* what) {
  const auto bad = tensors.first_non_finite();
  if (bad) spdlog::warn("the {} is not finite ({}): not kept; it starts again from the model", what, *bad);
  return !bad;
}

}  // namespace

model::ModelParameters RoundDriver::with_kept_tensors(const model::ModelParameters& global,
                                                      const model::PersonalTensors& personal) const {
  model::ModelParameters kept = personal.personal_part(context_.personal_state.load());
  if (kept.size() == 0 || !usable_personal(kept, "kept personal state")) return global;
  std::vector<model::Tensor> tensors = global.tensors();
  for (auto& t : kept.mutable_tensors()) {
    if (!global.find(t.name)) tensors.push_back(std::move(t));
  }
  return model::ModelParameters(std::move(tensors));
}

model::ModelParameters RoundDriver::keep_personal(const model::ModelParameters& local,
                                                  const model::PersonalTensors& personal) {
  const model::ModelParameters kept = personal.personal_part(local);
  if (kept.size() > 0 && usable_personal(kept, "trained personal state")) {
    context_.consent.while_granted([&] { context_.personal_state.save(kept); });
  }
  return personal.federated_part(local);
}

round::Outputs RoundDriver::train(const round::out::Fit& fit, round::Participant& participant) {
  *step_ = "training";
  link_.arm(std::chrono::hours(24 * 365));  // local work: no socket deadline (the task's own is the participant's)
  round::Fitted fitted;
  const std::shared_ptr<TrainingControl> control = context_.start_training();
  if (deadline_) control->stop_at(*deadline_, overdue_reason());
  const model::PersonalTensors personal(fit.plan.personal);
  try {
    if (context_.forget_personal_model.exchange(false)) context_.trainer->forget_personal_model();
    // Ditto goes on from the personal model kept in the store, read once: the trainer holds it from then on.
    if (fit.plan.ditto_lambda > 0 && !context_.trainer->holds_personal_model()) {
      if (auto kept = context_.personal_state.load_personal_model();
          kept.size() > 0 && usable_personal(kept, "kept personal model")) {
        context_.trainer->restore_personal_model(std::move(kept));
      }
    }
    FitResult r = personal.empty() ? context_.trainer->fit(*fit.global_model, fit.plan, *control)
                                   : context_.trainer->fit(with_kept_tensors(*fit.global_model, personal), fit.plan,
                                                           *control);
    if (r.personal_model && usable_personal(*r.personal_model, "trained personal model")) {
      context_.consent.while_granted([&] { context_.personal_state.save_personal_model(*r.personal_model); });
    }
    fitted.local_model = personal.empty() ? std::move(r.local_model) : keep_personal(r.local_model, personal);
    fitted.metrics = r.metrics;
    fitted.local_evaluation = r.local_evaluation;
  } catch (const std::exception& e) {
    if (!control->stop_reason()) throw FatalError(std::string("local training failed: ") + e.what());
  }
  if (const auto reason = control->stop_reason()) {
    // Stopped between batches: nothing of this round is sent; the aggregator sees this client leave.
    record_in_ledger(participant.record(), "abandoned", *reason);
    context_.emit({ClientEventKind::kRoundAbandoned, fit.round_id, "training stopped: " + *reason});
    throw TrainingStopped("training stopped: " + *reason);
  }
  const auto& config = context_.config;
  if (config.save_local_models && !fitted.local_model->layout_mismatch(*fit.global_model)) {
    context_.consent.while_granted([&] {
      codec::write_model_file(config.state_dir / local_model_file_name(fit.round_id),
                              {fit.round_id, fitted.metrics.num_examples, *fitted.local_model, {}, {}});
    });
  }
  context_.emit({ClientEventKind::kTrained, fit.round_id, "", fitted.metrics.mean_loss});
  return participant.on_fitted(std::move(fitted), Clock::now());
}

asio::awaitable<void> RoundDriver::send_upload(const round::out::Upload& upload) {
  *step_ = "uploading the update";
  const model::ModelParameters payload = round::upload_payload(upload);
  v1::Envelope header;
  *header.mutable_update() = round::upload_header(upload, payload);
  co_await link_.write(std::move(header));
  for (const auto& frame : codec::encode_chunk_frames(payload, context_.config.chunk_bytes)) {
    link_.arm(context_.config.io_timeout);
    co_await link_.write_frame(*frame);
  }
  context_.emit({ClientEventKind::kUploaded, upload.round_id, "", static_cast<double>(link_.bytes_sent())});
}

// An aggregator message in the middle of a round, for the participant.
round::Outputs RoundDriver::deliver(round::Participant& participant, const v1::Envelope& env) {
  const auto now = Clock::now();
  if (env.has_secagg_key_directory()) {
    return participant.on_key_directory(secagg::from_proto(env.secagg_key_directory()), now);
  }
  if (env.has_secagg_shares()) return participant.on_shares({secagg::from_proto(env.secagg_shares())}, now);
  if (env.has_secagg_unmask_request()) {
    return participant.on_unmask_request(secagg::from_proto(env.secagg_unmask_request()), now);
  }
  if (env.has_round_result()) return participant.on_result(round::result_from_proto(env.round_result()), now);
  throw Error("aggregator sent " + net::body_name(env) + " where the round's next step or result was expected");
}

// The round is over for the participant: the ledger, the events, and what the session does next.
void RoundDriver::conclude(const round::Participant& participant, const round::out::Finish& finish,
                           SessionResult& result) {
  using round::out::Outcome;
  const std::uint64_t round_id = participant.round_id();
  switch (finish.outcome) {
    case Outcome::kCompleted:
    case Outcome::kAbandoned: {
      const bool completed = finish.outcome == Outcome::kCompleted;
      record_in_ledger(participant.record(), completed ? "completed" : "abandoned");
      result.contributed = completed;
      context_.emit({completed ? ClientEventKind::kRoundCompleted : ClientEventKind::kRoundAbandoned, round_id,
                     finish.message});
      result.outcome = finish.training_finished ? SessionEnd::kFinished : SessionEnd::kRoundDone;
      result.message = finish.training_finished ? "training finished" : finish.message;
      return;
    }
    case Outcome::kRefused:
      if (finish.fatal) throw FatalError(finish.message);  // what this device would send can never be taken
      [[fallthrough]];
    case Outcome::kDiverged:
    case Outcome::kDeadline:
      spdlog::warn("round {}: {}", round_id, finish.message);
      result.outcome = SessionEnd::kRoundDone;
      result.message = finish.message;
      return;
    case Outcome::kFailed:
      if (finish.fatal) throw FatalError(finish.message);
      if (participant.record().sent) record_in_ledger(participant.record(), "rejected");
      result.outcome = SessionEnd::kDisconnected;
      result.message = finish.message;
      return;
  }
}

void RoundDriver::record_in_ledger(const round::ContributionRecord& r, const std::string& outcome,
                                   const std::string& reason) const {
  if (!context_.ledger) return;
  // After a revocation the ledger is the app's to keep or delete: nothing more is written to it.
  context_.consent.while_granted([&] {
    LedgerEntry entry{r.round_id, outcome, r.num_examples, link_.bytes_sent(), link_.bytes_received(),
                      r.train_loss, r.update_l2_norm, r.secure, r.clip_norm, r.privacy, false};
    entry.reason = reason;
    context_.ledger->append(entry);
  });
}

}  // namespace sotto::client
