// The coordinator's actions: what its caller (the TLS server, the simulator) carries out, in order, after each
// event — admit or defer a client, send the task, the SecAgg+ steps' messages, a round's result, a rejection, and
// RoundClosed, which asks the caller to checkpoint, evaluate and log.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "aggregator/coordinator_options.h"
#include "aggregator/privacy_budget.h"
#include "aggregator/round_report.h"
#include "common/ml/training_plan.h"
#include "common/model/parameters.h"
#include "common/round/messages.h"
#include "common/secagg/messages.h"
#include "sotto/v1/sotto.pb.h"

namespace sotto::aggregator {

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
  std::optional<round::DistributedNoise> noise;        // distributed DP's encoding, when on
  dp::ContributionBound bound;                         // a secure sum's contribution bound
  std::uint32_t evaluation_bins = 0;                   // accuracy histograms at the vector's end (0: none)
};
struct SendTask {  // the same task and model to every connection listed
  std::vector<ConnectionId> conns;
  std::uint64_t round_id;
  ml::TrainingPlan plan;
  std::shared_ptr<const model::ModelParameters> model;
  Duration deadline;
  std::optional<SecAggAssignment> secagg;  // set for a secure round
  bool secure_sum = false;                 // a federated-analytics round: contribute, do not train
  std::optional<round::DistributedNoise> plain_noise;  // a plain round under DP (central or local)
};
struct SendKeyDirectory {  // SecAgg R0 result, to each client that advertised: its neighbours' keys
  ConnectionId conn;
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
  std::map<std::string, std::uint32_t> offences;  // CoordinatorStart::offences, to checkpoint
  std::vector<double> privacy_rdp;                // the privacy spent so far, to checkpoint (beside the journal)
  double clip_norm = 0;                           // adaptive clipping: the next round's, to checkpoint; 0: fixed
};
// Write the round's privacy charge to the journal, durably, before anything after it in the same batch (the unmask
// requests) goes out.
struct DebitPrivacy {
  RoundCharge charge;
};
}  // namespace action

using Action = std::variant<action::Admit, action::RetryLater, action::SendTask, action::SendRoundResult,
                            action::SendFinished, action::Reject, action::RoundClosed, action::SendKeyDirectory,
                            action::SendShares, action::SendUnmaskRequest, action::DebitPrivacy>;
using Actions = std::vector<Action>;

}  // namespace sotto::aggregator
