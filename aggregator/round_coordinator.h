// RoundCoordinator: the aggregator's round state machine — check-in, training, aggregation — with no sockets and
// no clock of its own.
//
// The server (or the simulator) feeds it events: a client said hello, an update arrived, a connection closed,
// time passed (on_tick with the current time). Each call returns the actions to carry out, in order (see
// round_actions.h). Deadlines are compared against the times passed in, so tests drive every path — dropouts at
// every step, expiries — deterministically.
//
// A round ends with RoundClosed; the caller checkpoints, evaluates and logs it and then calls on_round_recorded,
// and only then does the next round's check-in open (clients arriving meanwhile are admitted to it). So round r is
// fully recorded before round r+1 starts, whatever the timing.
//
// A round: check-in opens and admits up to cohort_target clients (clients that arrive while a round trains are
// admitted at once to the next one, up to cohort_target of them; beyond that they are told to retry later). Training
// starts when the target is reached, or when the check-in window ends with at least cohort_min admitted. The round
// completes when every admitted client has uploaded or dropped and at least cohort_min valid updates arrived; it is
// abandoned — global model unchanged — as soon as that minimum can no longer be reached. Round ids count
// attempts; total_rounds counts completed rounds.
//
// Its pieces: UpdateSum (update_sum.h) adds the accepted updates into the strategy, in client-id order when asked;
// SecureAggregationRound (secure_aggregation.h) runs a secure round's SecAgg+ steps; a secure-sum round (federated
// analytics, CoordinatorOptions::secure_sum_length) publishes the survivors' sum instead of training.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aggregator/client_update.h"
#include "aggregator/coordinator_options.h"
#include "aggregator/plain_private_sum.h"
#include "aggregator/round_actions.h"
#include "aggregator/secure_aggregation.h"
#include "aggregator/strategy.h"
#include "aggregator/update_sum.h"
#include "common/model/parameters.h"

namespace sotto::aggregator {

class RoundCoordinator {
 public:
  enum class Phase { kIdle, kCheckIn, kTraining, kRecording, kFinished };

  RoundCoordinator(CoordinatorOptions options, CoordinatorStart start, std::unique_ptr<Strategy> strategy);

  Actions start(TimePoint now);
  // `max_clip_norm`: the largest clip norm the device accepts, as its Hello announced it (0: none); adaptive
  // clipping never gives a round a clip norm above its cohort's smallest.
  // `accuracy_histograms`: the Hello named round::kAccuracyHistogramCapability; `noised_histograms`:
  // round::kNoisedAccuracyHistogramCapability too.
  Actions on_hello(ConnectionId conn, const std::string& client_id, TimePoint now, double max_clip_norm = 0,
                   bool accuracy_histograms = true, bool noised_histograms = true);
  // A plain round's update.
  Actions on_update(ConnectionId conn, ClientUpdate update, TimePoint now);
  // Secure rounds: the four SecAgg+ steps' messages.
  Actions on_secagg_advertise(ConnectionId conn, const secagg::AdvertiseKeys& keys, TimePoint now);
  Actions on_secagg_shares(ConnectionId conn, const std::vector<secagg::EncryptedShare>& shares, TimePoint now);
  Actions on_masked_input(ConnectionId conn, MaskedUpload upload, TimePoint now);
  Actions on_secagg_accusation(ConnectionId conn, const secagg::Accusation& accusation, TimePoint now);
  Actions on_secagg_unmask(ConnectionId conn, const secagg::UnmaskResponse& response, TimePoint now);
  Actions on_disconnect(ConnectionId conn, const std::string& reason, TimePoint now);
  Actions on_tick(TimePoint now);
  // The caller has checkpointed, evaluated and logged the last RoundClosed: open the next round's check-in.
  Actions on_round_recorded(TimePoint now);

  // The earliest time at which on_tick has something to do.
  std::optional<TimePoint> next_deadline() const;
  Phase phase() const { return phase_; }
  // reproducible_aggregation: updates received but not yet summed, waiting for a smaller client id's update.
  std::size_t updates_held() const { return sum_.held(); }
  bool finished() const { return phase_ == Phase::kFinished; }
  // Why the run ended early, when max_consecutive_abandoned rounds in a row were abandoned.
  const std::optional<std::string>& gave_up() const { return gave_up_; }
  // Why the run ended before rounds.total when the privacy budget did not allow another round (a normal end).
  const std::optional<std::string>& budget_spent() const { return budget_spent_; }
  const PrivacyBudget& privacy_budget() const { return budget_; }
  // The round now training is abandoned for a reason outside the protocol (the privacy journal could not be
  // written): nothing more of it is sent, and its clients are told.
  Actions abandon_round(const std::string& reason, TimePoint now);
  // sotto-sim: a sampled draw too small to run still costs privacy against the released models.
  void charge_skipped_draw(std::uint32_t expected_clients);
  std::uint64_t round_id() const { return round_id_; }
  // Whether the round now training runs secure aggregation.
  bool in_secure_round() const { return secure_ != nullptr; }
  // The largest update stream the current round accepts: the model's size, or a secure round's masked vector.
  std::size_t max_update_bytes() const;
  // A secure round's masked-input parameters (vector length, bits), for decoding the upload; none otherwise.
  std::optional<secagg::RoundConfig> secure_config() const;
  std::uint64_t completed_rounds() const { return completed_rounds_; }
  std::shared_ptr<const model::ModelParameters> global_model() const { return global_; }
  // The client id behind a connection known to the coordinator (admitted or waiting), else empty.
  std::string client_id(ConnectionId conn) const;

  // Where the run stands, for the status page.
  struct Progress {
    Phase phase = Phase::kIdle;
    std::uint64_t round_id = 0, completed_rounds = 0, total_rounds = 0;
    std::size_t cohort = 0;    // members of the round now (checked in, or training)
    std::size_t uploaded = 0;  // plain round: updates in; secure round: clients that answered the current step
    std::size_t waiting = 0;   // connections told to wait for the next round
    std::optional<secagg::Step> secure_step;  // the SecAgg+ step being collected
  };
  Progress progress() const;

 private:
  struct Member {
    std::string client_id;
    double max_clip_norm = 0;  // announced in its Hello; 0: none
    bool accuracy_histograms = true;  // its Hello says it can add them (evaluation_bins)
    bool noised_histograms = true;    // ... and under distributed DP, with their own noise share
    bool uploaded = false;  // a plain round's update arrived
  };

  // Check-in and the phases.
  void open_checkin(TimePoint now, Actions& out);
  void start_training(TimePoint now, Actions& out);
  bool has_client(const std::string& client_id) const;
  std::uint32_t pending() const;
  // Updates.
  std::optional<std::string> check_update(const UpdateSummary& update) const;
  std::optional<std::string> check_delta(const ClientUpdate& update) const;
  // The examples an update counts for (capped at max_examples_per_client); notes a capped claim in the report.
  std::uint64_t counted_examples(const std::string& client_id, const UpdateSummary& update);
  void count_update(const std::string& client_id, const UpdateSummary& update, std::uint64_t examples);
  // A connection that is not (or no longer) training in this round sent `what`: reject it, forget it.
  void reject_stranger(ConnectionId conn, const std::string& what, TimePoint now, Actions& out);
  // `cause`: a short, fixed name for the metrics (an error code's, "disconnected", "deadline_exceeded").
  void drop(ConnectionId conn, const std::string& reason, const std::string& cause);
  void reject_and_drop(ConnectionId conn, v1::ErrorCode code, const std::string& message, Actions& out);
  void maybe_close_round(TimePoint now, Actions& out);
  void close_round(TimePoint now, bool completed, const std::string& abandon_reason, Actions& out);
  void count_abandoned_streak(bool completed, const std::string& abandon_reason);
  // Secure rounds.
  bool secure_step_open(ConnectionId conn, secagg::Step step, TimePoint now, Actions& out);
  Actions after_secure_message(ConnectionId conn, std::optional<Refusal> refusal, TimePoint now);
  void maybe_close_step(TimePoint now, Actions& out);
  void close_step(TimePoint now, Actions& out);
  void expire_step(TimePoint now, Actions& out);
  void finish_secure_round(SecureAggregationRound::Summed summed, TimePoint now, Actions& out);
  // Adaptive clipping: the round's clip norm (the adapted one, capped by the cohort's announced maxima), and the
  // next one from the noised sum of the clipped-count coordinates.
  double round_clip_norm();
  std::uint32_t accuracy_bins(bool secure_sum);
  void adapt_clip_norm(double clipped_count_sum);
  void read_histogram(SecureAggregationRound::Summed& summed, std::uint32_t bins);
  // Privacy: the next secure round's charge (false: it may not run, and `out` says so), the debit before unmasking.
  bool budget_allows_full_cohort(Actions& out);
  bool plan_privacy(TimePoint now, Actions& out, std::uint32_t histogram_bins = 0);
  std::uint64_t private_dimension() const;
  void debit_privacy(Actions& out);
  void report_privacy();
  void stop_for_budget(const std::string& why, Actions& out);

  CoordinatorOptions options_;
  std::unique_ptr<Strategy> strategy_;
  UpdateSum sum_;
  std::shared_ptr<const model::ModelParameters> global_;
  std::uint64_t round_id_;
  std::uint64_t completed_rounds_;
  std::uint32_t consecutive_abandoned_ = 0;
  std::optional<std::string> gave_up_;
  Phase phase_ = Phase::kIdle;

  std::map<ConnectionId, Member> cohort_;        // admitted to the current round
  std::map<ConnectionId, Member> waiting_;  // arrived during training; admitted when check-in opens
  std::map<std::string, std::uint32_t> offences_;  // per client id: convictions in secure rounds, all runs
  TimePoint checkin_opened_{};
  TimePoint checkin_deadline_{};
  TimePoint training_started_{};
  TimePoint training_deadline_{};
  RoundReport report_;
  std::unique_ptr<SecureAggregationRound> secure_;  // the round now training, when secure
  struct SecureWork {                               // RoundReport::SecAgg's seconds of server work, this round
    double summing = 0, unmasking = 0, decoding = 0;
  } secure_work_;
  // Runs `work` and adds its duration by options_.stopwatch (none: not measured) to `seconds`.
  template <typename Work>
  auto timed(double& seconds, Work&& work) {
    return timed_by(options_.stopwatch, seconds, std::forward<Work>(work));
  }
  std::optional<PlainPrivateSum> plain_private_;    // the round now training, when plain and under DP
  PrivacyBudget budget_;
  std::optional<RoundCharge> charge_;  // the round now training, under DP: its cost, debited before unmasking
  std::optional<std::string> budget_spent_;  // why the run stopped: the next round would overspend
  double clip_norm_;                     // the clip norm rounds start from (adaptive clipping moves it)
  double announced_clip_ceiling_ = 0;    // the round's cohort's smallest announced max_clip_norm; 0: none
  double weighted_loss_ = 0;
  double weighted_accuracy_ = 0;
};

}  // namespace sotto::aggregator
