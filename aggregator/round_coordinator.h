// RoundCoordinator: the aggregator's round state machine — check-in, training, aggregation — with no sockets and
// no clock of its own.
//
// The server (or the simulator) feeds it events: a client said hello, an update arrived, a connection closed,
// time passed (on_tick with the current time). Each call returns the actions to carry out, in order: admit or
// defer a client, send the task to the cohort, reject a misbehaving client, report a round's outcome, and
// RoundClosed, which asks the caller to checkpoint, evaluate and log. Deadlines are compared against the times
// passed in, so tests drive every path — dropouts at every step, expiries — deterministically.
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
#pragma once

#include <chrono>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "aggregator/strategy.h"
#include "common/secagg/messages.h"
#include "common/secagg/quantizer.h"
#include "common/secagg/server_session.h"
#include "common/ml/training_plan.h"
#include "common/model/parameters.h"
#include "sotto/v1/sotto.pb.h"

namespace sotto::aggregator {

using ConnectionId = std::uint64_t;
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;

// Secure aggregation (SecAgg+): the aggregator learns only the sum of the surviving clients' clipped, quantized
// updates and applies their unweighted mean through the strategy.
struct SecureAggregationOptions {
  bool enabled = false;
  double clip_norm = 30.0;         // L2 bound on each client's update (floating-point tensors)
  double dropout_rate = 0.1;       // expected fraction of clients lost during a round, for choosing k and t
  double corruption_rate = 0.05;   // fraction of clients assumed to collude with the aggregator
  bool complete_graph = false;     // k = n - 1: the original SecAgg instead of SecAgg+
  std::uint32_t neighbours = 0;    // fixed k (even, < n), 0 = chosen by secagg::find_parameters
  std::uint32_t threshold = 0;     // fixed t, 0 = chosen with k
  std::uint32_t bits = 32;         // the modulus 2^bits of inputs, masks and sum; masked inputs upload packed
  Duration step_deadline = std::chrono::seconds(30);  // for each of the steps after training
};

struct CoordinatorOptions {
  std::uint64_t total_rounds = 5;
  std::uint32_t cohort_target = 8;
  std::uint32_t cohort_min = 1;
  Duration checkin_window = std::chrono::seconds(30);
  Duration training_deadline = std::chrono::seconds(600);
  Duration retry_delay = std::chrono::seconds(5);
  ml::TrainingPlan plan;
  std::uint64_t seed = 0;
  // Plain rounds: add the updates in client-id order, so that the new model does not depend on the order they
  // arrived in (floating-point addition is not associative). An update is added as soon as every cohort member
  // with a smaller id has sent its update or left; until then it is held. Arriving in id order, nothing is held;
  // in random order, about half the cohort's updates are at worst. Off, updates are summed as they arrive.
  bool reproducible_aggregation = false;
  // Give up after this many abandoned rounds in a row (0: never): the run is finished, and gave_up() says why.
  // Abandoned rounds do not count toward total_rounds, so without a limit a diverging plan never ends.
  std::uint32_t max_consecutive_abandoned = 0;
  SecureAggregationOptions secure;
  // Federated analytics instead of training: each round publishes the secure sum of the survivors' integer
  // vectors of this length (needs secure.enabled); the model and the strategy are not used.
  std::uint64_t secure_sum_length = 0;
};

// Where a resumed aggregator starts.
struct CoordinatorStart {
  model::ModelParameters global_model;
  std::uint64_t next_round_id = 1;
  std::uint64_t completed_rounds = 0;
  model::ModelParameters strategy_state;  // from Strategy::save_state(); empty for a fresh start
};

struct ClientUpdate {
  std::uint64_t round_id = 0;
  std::uint64_t num_examples = 0;
  double train_loss = 0;
  double train_accuracy = 0;
  double train_seconds = 0;
  model::ModelParameters delta;
};

struct RoundReport {
  std::uint64_t round_id = 0;
  bool completed = false;
  std::string abandon_reason;
  std::uint32_t cohort = 0;     // clients that received the task
  std::uint32_t survivors = 0;  // valid updates aggregated
  std::uint64_t examples = 0;
  double mean_train_loss = 0;      // example-weighted, over survivors
  double mean_train_accuracy = 0;  // example-weighted, over survivors
  double slowest_train_seconds = 0;
  double checkin_seconds = 0;
  double training_seconds = 0;     // task sent to round closed
  double aggregation_seconds = 0;  // CPU time in the strategy (measured, for reporting only)
  struct SecAgg {
    std::uint32_t n = 0, k = 0, t = 0;
    std::uint32_t advertised = 0, shared = 0, masked = 0, unmasked = 0;  // clients that completed each step
    double seconds[4] = {0, 0, 0, 0};                                    // each step, from its start to its close
  };
  std::optional<SecAgg> secagg;
  std::vector<std::uint32_t> secure_sum;  // a secure-sum round's result (mod 2^32)
  std::vector<std::string> participants;
  std::vector<std::pair<std::string, std::string>> dropped;  // client id, reason
};

namespace action {
struct Admit {
  ConnectionId conn;
  std::uint64_t round_id;
};
struct RetryLater {  // then close
  ConnectionId conn;
  Duration delay;
  std::string reason;
};
struct SecAggAssignment {
  secagg::RoundConfig config;
  double clip_norm;
  std::map<ConnectionId, secagg::ClientIndex> index;  // each connection's index in the secure round
};
struct SendTask {  // the same task and model to every connection listed
  std::vector<ConnectionId> conns;
  std::uint64_t round_id;
  ml::TrainingPlan plan;
  std::shared_ptr<const model::ModelParameters> model;
  Duration deadline;
  std::optional<SecAggAssignment> secagg;  // set for a secure round
  bool secure_sum = false;                 // a federated-analytics round: contribute, do not train
};
struct SendKeyDirectory {  // SecAgg R0 result, to every client that advertised
  std::vector<ConnectionId> conns;
  secagg::KeyDirectory directory;
};
struct SendShares {  // SecAgg R1 result: the ciphertexts addressed to this client
  ConnectionId conn;
  std::vector<secagg::EncryptedShare> shares;
};
struct SendUnmaskRequest {  // SecAgg R2 result
  ConnectionId conn;
  secagg::UnmaskRequest request;
};
struct SendRoundResult {  // then close
  ConnectionId conn;
  std::uint64_t round_id;
  bool completed;
  std::uint32_t survivors;
  bool training_finished;
  std::string message;
};
struct SendFinished {  // then close
  ConnectionId conn;
  std::uint64_t rounds_completed;
};
struct Reject {  // error frame, then close
  ConnectionId conn;
  v1::ErrorCode code;
  std::string message;
};
struct RoundClosed {  // checkpoint (model, counters, strategy state), evaluate, log
  RoundReport report;
  std::shared_ptr<const model::ModelParameters> global_model;
  std::string strategy;
  std::shared_ptr<const model::ModelParameters> strategy_state;
  std::uint64_t next_round_id;
  std::uint64_t completed_rounds;
};
}  // namespace action

using Action = std::variant<action::Admit, action::RetryLater, action::SendTask, action::SendRoundResult,
                            action::SendFinished, action::Reject, action::RoundClosed, action::SendKeyDirectory,
                            action::SendShares, action::SendUnmaskRequest>;
using Actions = std::vector<Action>;

class RoundCoordinator {
 public:
  enum class Phase { kIdle, kCheckIn, kTraining, kRecording, kFinished };

  RoundCoordinator(CoordinatorOptions options, CoordinatorStart start, std::unique_ptr<Strategy> strategy);

  Actions start(TimePoint now);
  Actions on_hello(ConnectionId conn, const std::string& client_id, TimePoint now);
  // A plain round's update, or in a secure round the masked input (delta = one int32 tensor
  // "secagg.masked_input" of the round's vector length).
  Actions on_update(ConnectionId conn, ClientUpdate update, TimePoint now);
  // Secure rounds: R0, R1 and R3 messages.
  Actions on_secagg_advertise(ConnectionId conn, const secagg::AdvertiseKeys& keys, TimePoint now);
  Actions on_secagg_shares(ConnectionId conn, const std::vector<secagg::EncryptedShare>& shares, TimePoint now);
  Actions on_secagg_unmask(ConnectionId conn, const secagg::UnmaskResponse& response, TimePoint now);
  Actions on_disconnect(ConnectionId conn, const std::string& reason, TimePoint now);
  Actions on_tick(TimePoint now);
  // The caller has checkpointed, evaluated and logged the last RoundClosed: open the next round's check-in.
  Actions on_round_recorded(TimePoint now);

  // The earliest time at which on_tick has something to do.
  std::optional<TimePoint> next_deadline() const;
  Phase phase() const { return phase_; }
  // reproducible_aggregation: updates received but not yet summed, waiting for a smaller client id's update.
  std::size_t updates_held() const { return held_updates_.size(); }
  bool finished() const { return phase_ == Phase::kFinished; }
  // Why the run ended early, when max_consecutive_abandoned rounds in a row were abandoned.
  const std::optional<std::string>& gave_up() const { return gave_up_; }
  std::uint64_t round_id() const { return round_id_; }
  // Whether the round now training runs secure aggregation.
  bool in_secure_round() const { return secure_round(); }
  // The largest update stream the current round accepts: the model's size, or a secure round's masked vector.
  std::size_t max_update_bytes() const;
  std::uint64_t completed_rounds() const { return completed_rounds_; }
  std::shared_ptr<const model::ModelParameters> global_model() const { return global_; }
  // The client id behind a connection known to the coordinator (admitted or waiting), else empty.
  std::string client_id(ConnectionId conn) const;

 private:
  struct Member {
    std::string client_id;
    bool uploaded = false;
    secagg::ClientIndex index = 0;  // in a secure round
    int secagg_done = -1;           // last SecAgg step this client completed (0..3)
  };

  void open_checkin(TimePoint now, Actions& out);
  void start_training(TimePoint now, Actions& out);
  void drop(ConnectionId conn, const std::string& reason);
  std::optional<std::string> check_update(const ClientUpdate& update) const;
  void count_update(const std::string& client_id, const ClientUpdate& update);
  Actions on_masked_update(ConnectionId conn, const ClientUpdate& update, TimePoint now);
  void maybe_close_round(TimePoint now, Actions& out);
  void close_round(TimePoint now, bool completed, const std::string& abandon_reason, Actions& out);
  // reproducible_aggregation: sums the held updates whose turn has come (see sum_order_).
  void sum_in_order();
  bool has_client(const std::string& client_id) const;
  // Secure rounds.
  bool secure_round() const { return session_ != nullptr; }
  void start_secure_round(action::SendTask& task);
  Member* secure_member(ConnectionId conn, int step, const char* what, Actions& out);
  // A secure step's message from `conn`: checks it belongs to this step, lets `accept` feed it to the session, and
  // drops the sender if the session refuses it.
  Actions secure_step_message(ConnectionId conn, int step, const char* what, TimePoint now,
                              const std::function<void(Member&)>& accept);
  void reject_and_drop(ConnectionId conn, v1::ErrorCode code, const std::string& message, Actions& out);
  void maybe_close_step(TimePoint now, Actions& out);
  void close_step(TimePoint now, Actions& out);
  ConnectionId conn_of(secagg::ClientIndex index) const;
  std::uint32_t pending() const;

  CoordinatorOptions options_;
  std::unique_ptr<Strategy> strategy_;
  std::shared_ptr<const model::ModelParameters> global_;
  std::uint64_t round_id_;
  std::uint64_t completed_rounds_;
  std::uint32_t consecutive_abandoned_ = 0;
  std::optional<std::string> gave_up_;
  Phase phase_ = Phase::kIdle;

  std::map<ConnectionId, Member> cohort_;        // admitted to the current round
  std::map<ConnectionId, std::string> waiting_;  // arrived during training; admitted when check-in opens
  TimePoint checkin_opened_{};
  TimePoint checkin_deadline_{};
  TimePoint training_started_{};
  TimePoint training_deadline_{};
  RoundReport report_;
  std::unique_ptr<secagg::ServerSession> session_;
  std::optional<secagg::Quantizer> quantizer_;
  std::map<secagg::ClientIndex, std::string> secure_clients_;  // index -> client id, for the whole round
  int secagg_step_ = 0;  // the SecAgg step being collected (0 advertise .. 3 unmask)
  TimePoint step_started_{};
  TimePoint step_deadline_{};
  // reproducible_aggregation: the cohort's ids and connections in summing order, how many of them are summed or
  // skipped, and the updates that arrived before their turn.
  std::vector<std::pair<std::string, ConnectionId>> sum_order_;
  std::size_t sum_cursor_ = 0;
  std::map<std::string, ClientUpdate> held_updates_;
  double weighted_loss_ = 0;
  double weighted_accuracy_ = 0;
};

}  // namespace sotto::aggregator
