// Participant: one client's side of a federated round as a state machine — messages in, outputs out, no sockets, no
// clock of its own (times are passed in), and randomness from an injected RandomSource. sotto-client's transport
// (client/client.cc) and sotto-sim's in-memory rounds drive this same class.
//
//   on_task            the task and the global model     -> out::Fit (train), or straight to privatize (secure sum);
//                                                           a plan the device's privacy floor refuses, or a
//                                                           global model with a tensor the device keeps personal,
//                                                           ends the round at once: out::ReportError and
//                                                           out::Finish (kRefused), nothing else sent
//   on_fitted          the trainer's result              -> privatize: the delta, checked for NaN/Inf; in a secure
//                                                           round clipped and quantized -> out::AdvertiseKeys;
//                                                           in a plain round -> out::Upload
//   on_key_directory   SecAgg+ R0 answer                 -> out::ShareKeys
//   on_shares          SecAgg+ R1 answer                 -> out::Upload (the masked input)
//   on_unmask_request  SecAgg+ R2 answer                 -> out::UnmaskResponse
//   on_result          the round's outcome               -> out::Finish
//   on_tick            time passed                       -> out::Finish (kDeadline) once the task's deadline passes
//                                                           before the first message after training is out
//
// A message the aggregator should not have sent — out of order, repeated, for another round, or one the SecAgg+
// session refuses — never throws: the participant answers with out::ReportError and out::Finish (kFailed), and
// ignores everything after. Training that diverges sends nothing but an error saying so. Every round is a new
// Participant.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/model/personal_tensors.h"
#include "common/round/device_privacy.h"
#include "common/round/messages.h"
#include "common/round/random_source.h"

namespace sotto::secagg {
class ClientSession;
}

namespace sotto::round {

struct ParticipantOptions {
  std::string client_id;  // the training seed derives from it (ml::client_training_seed)
  // A secure-sum contributor: these integers are its input, and it cannot train.
  std::optional<std::vector<std::uint32_t>> contribution;
  DevicePrivacy privacy;               // the device's floor on the rounds it takes part in
  std::vector<double> privacy_spent;   // its own accountant: the RDP it has spent so far (empty: none)
  // The tensors this device keeps whatever the plan says (its personalization.personal): a task whose global model
  // carries one is refused, and nothing is sent.
  model::PersonalTensors personal;
  // evaluation.report_local: send the trainer's LocalEvaluation with the update, in rounds without DP noise.
  bool report_local_evaluation = false;
  // evaluation.report_local = "secure_sum": only as a one-hot in a secure round's accuracy histogram, where the
  // aggregator asks for one (ml/accuracy_histogram.h); report_local_evaluation allows that too.
  bool report_local_in_secure_sum = false;
};

// What the trainer produced: the local model, or the delta (local - global) when the driver computes it itself.
struct Fitted {
  std::optional<model::ModelParameters> local_model;
  std::optional<model::ModelParameters> delta;
  ml::TrainMetrics metrics;
  std::optional<ml::LocalEvaluation> local_evaluation;
};

class Participant {
 public:
  enum class Step { kAwaitingTask, kTraining, kAdvertised, kShared, kUploaded, kUnmasked, kFinished };

  Participant(ParticipantOptions options, RandomSource& random);
  ~Participant();
  Participant(Participant&&) noexcept;
  Participant& operator=(Participant&&) noexcept;

  Outputs on_task(Task task, TimePoint now);
  Outputs on_fitted(Fitted fitted, TimePoint now);
  Outputs on_key_directory(const secagg::KeyDirectory& directory, TimePoint now);
  Outputs on_shares(const secagg::SharesForYou& shares, TimePoint now);
  Outputs on_unmask_request(const secagg::UnmaskRequest& request, TimePoint now);
  Outputs on_result(const RoundResult& result, TimePoint now);
  Outputs on_tick(TimePoint now);

  // When on_tick must be called next (the task's deadline while it is pending).
  std::optional<TimePoint> deadline() const;
  Step step() const { return step_; }
  bool finished() const { return step_ == Step::kFinished; }
  std::uint64_t round_id() const { return task_.round_id; }
  bool secure() const { return task_.secure.has_value(); }
  const ContributionRecord& record() const { return record_; }

 private:
  Outputs privatize(model::ModelParameters delta, const ml::TrainMetrics& metrics);
  Outputs privatize_with_noise(std::vector<float> flat);
  Outputs privatize_plain_with_noise(model::ModelParameters delta, const ml::TrainMetrics& metrics);
  Outputs contribute_with_noise(std::vector<std::uint32_t> input);
  Outputs start_secure(std::vector<std::uint32_t> input);
  Outputs finish(out::Outcome outcome, std::string message, bool fatal = false);
  Outputs protocol_error(v1::ErrorCode code, const std::string& message);
  std::optional<Outputs> refuse_unless(Step expected, const char* what);
  template <typename Body>
  Outputs guarded(Body&& body);

  ParticipantOptions options_;
  RandomSource* random_;
  Step step_ = Step::kAwaitingTask;
  Task task_;
  std::optional<TimePoint> deadline_;
  ml::TrainMetrics metrics_;
  std::optional<ml::LocalEvaluation> local_evaluation_;  // to report in the clear, when the device allows it
  std::optional<ml::LocalEvaluation> histogram_evaluation_;  // to report in a secure sum, when the device allows it
  std::unique_ptr<secagg::ClientSession> session_;
  ContributionRecord record_;
};

const char* step_name(Participant::Step step);

}  // namespace sotto::round
