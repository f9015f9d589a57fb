// The messages of a participant's round as plain C++ structs: what the aggregator sends a participant (in) and what
// a participant asks its driver to do or send (out). common/round/message_codec.h converts them to and from the
// wire's protobuf messages; the simulator hands them over in memory.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/dp/ddg_parameters.h"
#include "common/dp/integer_sum.h"
#include "common/dp/randomized_rotation.h"
#include "common/ml/training_plan.h"
#include "common/model/parameters.h"
#include "common/secagg/messages.h"
#include "sotto/v1/sotto.pb.h"

namespace sotto::round {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// What secure aggregation asks of this participant in a round.
// Who adds a noised round's noise: every client its share (privacy.mode = "distributed"), the aggregator all of it
// to the unmasked sum ("central"), or every client all of it to its own update ("local": it trusts nobody, and the
// sum carries n times the noise).
enum class NoiseSource { kShares, kAggregator, kOwn };

// The privacy.mode that names it.
inline const char* noise_source_mode(NoiseSource source) {
  switch (source) {
    case NoiseSource::kAggregator: return "central";
    case NoiseSource::kOwn: return "local";
    case NoiseSource::kShares: break;
  }
  return "distributed";
}

// Every privacy.mode, as configured on the aggregator and accepted (privacy.accepted_modes) on a device.
inline const std::vector<std::string>& privacy_mode_names() {
  static const std::vector<std::string> names{"off", "distributed", "central", "local"};
  return names;
}

// A round under the Discrete Gaussian encoding (privacy.mode "distributed", "central" or "local"): how the client
// encodes its update instead of plain quantization (dp/ddg_encoding.h). ddg.bits and ddg.clip_norm are the
// assignment's.
struct DistributedNoise {
  dp::DdgParameters ddg;
  dp::RotationSeed rotation_seed{};
  std::uint32_t min_survivors = 0;  // the aggregator unmasks no sum of fewer masked inputs
  double epsilon_stated = 0;        // the aggregator's epsilon spent once this round is charged
  NoiseSource source = NoiseSource::kShares;  // kAggregator: ddg.local_stddev is the aggregator's whole draw
  bool integer_sum = false;  // a private secure sum (dp/integer_sum.h): the noise on the bounded integers themselves
  // Adaptive clipping (dp/adaptive_clipping.h): the clipped-count coordinate's weight, appended to the update
  // clipped to the assignment's clip norm; ddg.dimension counts it and ddg.clip_norm bounds both. 0: none.
  double clipped_count_weight = 0;
  // This device's noise share on its accuracy histograms (SecureAssignment::evaluation_bins; scale 1, the
  // dp::kOneHotPairBound mechanism), in distributed mode; 0: the round carries none.
  double histogram_local_stddev = 0;
};

// The capability a device's Hello names when it can add accuracy histograms to its masked input (SecureAssignment::
// evaluation_bins): an aggregator asks for them only when every device of the round's cohort named it.
inline constexpr const char* kAccuracyHistogramCapability = "accuracy_histogram";
// ... and when it can add them, with their own noise share, under distributed DP (DistributedNoise::
// histogram_local_stddev): an earlier device names only the first, and refuses a noised task with histograms.
inline constexpr const char* kNoisedAccuracyHistogramCapability = "accuracy_histogram_dp";

struct SecureAssignment {
  secagg::RoundConfig config;  // round id, n, k, t, vector length (the padded dimension under DDG), bits
  secagg::ClientIndex my_index = 0;
  double clip_norm = 0;  // L2 bound of the update before quantization
  dp::ContributionBound bound;  // a secure sum's: the device refuses a contribution over it
  std::optional<DistributedNoise> noise;
  // The vector's last 2·evaluation_bins words: this device's accuracy histogram (ml/accuracy_histogram.h); 0: none.
  std::uint32_t evaluation_bins = 0;
};

enum class TaskKind { kTrain, kSecureSum };

// ---- in: aggregator -> participant --------------------------------------------------------------------------------
struct Task {
  std::uint64_t round_id = 0;
  TaskKind kind = TaskKind::kTrain;
  ml::TrainingPlan plan;  // its seed is the round's; the participant derives its own from it
  std::shared_ptr<const model::ModelParameters> global_model;  // shared: a simulation's cohort holds one copy
  std::optional<std::array<std::uint8_t, 32>> model_sha256;  // the model's digest as the aggregator sent it
  std::chrono::milliseconds deadline{0};  // from receipt, for the first message after training; 0 = none
  std::optional<SecureAssignment> secure;
  // A plain round under DP (central: the device clips, the aggregator adds all the noise; local: the device adds
  // all of it and sends its update decoded, dp::ddg_noised_update). Never with `secure`, whose noise is its own.
  std::optional<DistributedNoise> plain_noise;
};

struct RoundResult {
  std::uint64_t round_id = 0;
  bool completed = false;
  std::uint32_t survivors = 0;
  bool training_finished = false;
  std::string message;
};

// ---- out: participant -> its driver ---------------------------------------------------------------------------------
namespace out {

// Train on local data: the driver calls the Trainer (or its training pool) and hands the result to on_fitted().
struct Fit {
  std::uint64_t round_id = 0;
  const model::ModelParameters* global_model = nullptr;  // owned by the participant until on_fitted
  ml::TrainingPlan plan;                                 // with this participant's training seed
};

struct AdvertiseKeys {
  secagg::AdvertiseKeys keys;
};

struct ShareKeys {
  std::vector<secagg::EncryptedShare> shares;
};

// The update: the delta itself in a plain round, or the masked input (mod 2^bits) in a secure one.
struct Upload {
  std::uint64_t round_id = 0;
  ml::TrainMetrics metrics;
  std::variant<model::ModelParameters, secagg::MaskedInput> payload;
  std::uint32_t bits = 32;  // of a masked input
  std::optional<ml::LocalEvaluation> local_evaluation;  // reported where the device allows it and DP is off
};

struct UnmaskResponse {
  secagg::UnmaskResponse response;
};

// SecAgg+ R2: some neighbours' shares did not open; report them, revealing the channel key of each such pair, just
// before the masked input (messages.h in common/secagg says why the reveal is safe).
struct Accuse {
  secagg::Accusation accusation;
};

// Tell the aggregator what went wrong (an Error frame); the round is over for this participant.
struct ReportError {
  v1::ErrorCode code = v1::ERROR_CODE_UNSPECIFIED;
  std::string message;
};

enum class Outcome {
  kCompleted,    // the round completed with this participant in it
  kAbandoned,    // the round was abandoned
  kDiverged,     // local training produced a non-finite update: nothing was sent
  kDeadline,     // the task's deadline passed before the update was sent
  kFailed,       // the aggregator's messages broke the protocol, or local work failed
  kRefused,      // the device's privacy settings refused the round's plan: nothing was sent
};

// The round is over for this participant; nothing more is sent.
struct Finish {
  Outcome outcome = Outcome::kFailed;
  std::string message;
  bool training_finished = false;  // the aggregator will run no more rounds
  bool fatal = false;              // retrying cannot help (e.g. this device cannot do the task it is given)
};

}  // namespace out

using Output = std::variant<out::Fit, out::AdvertiseKeys, out::ShareKeys, out::Upload, out::Accuse,
                            out::UnmaskResponse, out::ReportError, out::Finish>;
using Outputs = std::vector<Output>;

// What one contribution under distributed DP costs the device, in its own accounting (device_privacy.h).
struct DeviceCharge {
  std::string mode;              // the plan's privacy.mode: "distributed", "central" or "local"
  double noise_multiplier = 0;   // what its share implies
  std::uint32_t honest = 0;      // the honest shares it counts on
  std::vector<double> rdp;       // at dp::default_orders()
  double epsilon = 0;            // its own epsilon after this contribution
  double epsilon_stated = 0;     // the aggregator's, from the plan
  double histogram_noise_multiplier = 0;  // what its accuracy histograms' share implies (0: none)
};

// What the participant shared in a round, for the device's ledger.
struct ContributionRecord {
  std::uint64_t round_id = 0;
  std::uint64_t num_examples = 0;
  double train_loss = 0;
  double update_l2_norm = 0;  // of what was sent: after clipping in a secure round
  bool secure = false;
  double clip_norm = 0;
  bool sent = false;  // an update (or masked input) left the device
  std::optional<DeviceCharge> privacy;  // distributed DP: what the device charged itself for it
};

}  // namespace sotto::round
