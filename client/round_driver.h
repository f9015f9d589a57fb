// RoundDriver: the client's side of one round once its task and model have arrived. It hands them to
// round::Participant (common/round/participant.h) and carries out what the participant asks — train through the
// Trainer, send its messages over the AggregatorLink — and hands it the aggregator's answers, until the participant
// says the round is over. It records the round in the on-device ledger and reports progress as events.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "client/aggregator_link.h"
#include "client/client.h"
#include "client/ledger.h"
#include "client/personal_state.h"
#include "client/session_outcome.h"
#include "common/model/personal_tensors.h"
#include "common/round/messages.h"
#include "common/round/participant.h"

namespace sotto::client {

struct RoundDriverContext {
  const ClientConfig& config;
  Trainer* trainer;                                              // null for a secure-sum contributor
  const std::optional<std::vector<std::uint32_t>>& contribution;  // a secure-sum contributor's vector
  round::RandomSource& random;
  const Ledger* ledger;  // null without state_dir
  ConsentGate& consent;  // personal data is written only while it is granted
  std::vector<double>& privacy_spent;  // the device's own accountant (the ledger's sum, kept up to date)
  PersonalState& personal_state;       // the personal tensors the device keeps between rounds (plan.personal)
  std::function<void(const ClientEvent&)> emit;
  // The control of the training run about to start (Client::cancel, stop, an opt-out and eligibility reach it).
  std::function<std::shared_ptr<TrainingControl>()> start_training;
  // Set by an opt-out: the trainer forgets its in-memory personal model before its next fit().
  std::atomic<bool>& forget_personal_model;
};

// state.save_local_models: the local model of round `round_id`, in state_dir.
std::string local_model_file_name(std::uint64_t round_id);

class RoundDriver {
 public:
  RoundDriver(RoundDriverContext context, AggregatorLink& link);

  // The round from its task to its end; `result` says how the session ends, `step` what it was doing (for errors).
  boost::asio::awaitable<void> run(round::Task task, SessionResult& result, std::string& step);

 private:
  boost::asio::awaitable<round::Outputs> carry_out(round::Participant& participant, round::Output output);
  void charge_device(const round::ContributionRecord& record);
  round::Outputs train(const round::out::Fit& fit, round::Participant& participant);
  // The global model with the personal tensors the device kept (none before its first such round).
  model::ModelParameters with_kept_tensors(const model::ModelParameters& global,
                                           const model::PersonalTensors& personal) const;
  // Keeps the trained personal tensors on the device; the rest, the federated tensors, go on to the participant.
  model::ModelParameters keep_personal(const model::ModelParameters& local, const model::PersonalTensors& personal);
  boost::asio::awaitable<void> send_upload(const round::out::Upload& upload);
  round::Outputs deliver(round::Participant& participant, const v1::Envelope& env);
  void conclude(const round::Participant& participant, const round::out::Finish& finish, SessionResult& result);
  // limits.round_wall_time_s: past the round's deadline nothing more is sent and the round is left.
  std::string overdue_reason() const;
  void leave_if_overdue(const round::Participant& participant);
  void record_in_ledger(const round::ContributionRecord& r, const std::string& outcome,
                        const std::string& reason = "") const;

  RoundDriverContext context_;
  AggregatorLink& link_;
  std::string* step_ = nullptr;
  std::optional<std::chrono::steady_clock::time_point> deadline_;  // limits.round_wall_time_s from the task
};

}  // namespace sotto::client
