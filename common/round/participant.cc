#include "common/round/participant.h"

#include <array>
#include <cmath>
#include <stdexcept>

#include "common/codec/model_digest.h"
#include "common/model/clipping.h"
#include "common/crypto/random_stream.h"
#include "common/dp/adaptive_clipping.h"
#include "common/dp/ddg_encoding.h"
#include "common/dp/integer_sum.h"
#include "common/ml/accuracy_histogram.h"
#include "common/secagg/client_session.h"
#include "common/secagg/quantizer.h"
#include "common/secagg/update_vector.h"
#include "common/util/error.h"

namespace sotto::round {

const char* step_name(Participant::Step step) {
  switch (step) {
    case Participant::Step::kAwaitingTask: return "waiting for its task";
    case Participant::Step::kTraining: return "training";
    case Participant::Step::kAdvertised: return "waiting for the key directory";
    case Participant::Step::kShared: return "waiting for its neighbours' shares";
    case Participant::Step::kUploaded: return "waiting after its upload";
    case Participant::Step::kUnmasked: return "waiting for the round's result";
    case Participant::Step::kFinished: return "done with the round";
  }
  return "?";
}

Participant::Participant(ParticipantOptions options, RandomSource& random)
    : options_(std::move(options)), random_(&random) {}
Participant::~Participant() = default;
Participant::Participant(Participant&&) noexcept = default;
Participant& Participant::operator=(Participant&&) noexcept = default;

std::optional<TimePoint> Participant::deadline() const {
  return step_ == Step::kTraining ? deadline_ : std::nullopt;
}

Outputs Participant::on_task(Task task, TimePoint now) {
  if (auto refused = refuse_unless(Step::kAwaitingTask, "a task")) return *refused;
  if (!task.global_model) throw std::logic_error("Participant::on_task without a global model");
  task_ = std::move(task);
  record_.round_id = task_.round_id;
  if (task_.deadline.count() > 0) deadline_ = now + task_.deadline;
  const bool sum = task_.kind == TaskKind::kSecureSum;
  if (sum != options_.contribution.has_value()) {
    return finish(out::Outcome::kFailed,
                  sum ? "the aggregator runs a secure sum, but this client has no contribution (sotto-client "
                        "--contribute)"
                      : "this client was started to contribute to a secure sum, but the aggregator runs training",
                  true);
  }
  if (task_.model_sha256) {
    const codec::ModelDigest received = codec::model_digest(*task_.global_model);
    if (received != *task_.model_sha256) {
      return protocol_error(v1::ERROR_CODE_MALFORMED_FRAME,
                            "the global model received does not match the SHA-256 its task names (sha256 " +
                                codec::to_hex(received) + ", expected " + codec::to_hex(*task_.model_sha256) +
                                "): it was damaged on the way; not training on it");
    }
  }
  if (task_.secure && task_.secure->config.round_id != task_.round_id) {
    return protocol_error(v1::ERROR_CODE_WRONG_ROUND, "the task's secure-aggregation round differs from its round");
  }
  if (task_.secure && task_.plain_noise) {
    return protocol_error(v1::ERROR_CODE_UNEXPECTED_MESSAGE, "a secure task with a plain round's noise plan");
  }
  auto judged = judge_plan(options_.privacy, plan_privacy(task_), options_.privacy_spent);
  if (auto* why = std::get_if<std::string>(&judged)) {
    step_ = Step::kFinished;
    return {out::ReportError{v1::ERROR_CODE_PRIVACY_REFUSED, *why}, out::Finish{out::Outcome::kRefused, *why}};
  }
  if (auto kept = options_.personal.first_personal(*task_.global_model)) {
    const std::string why = "the round would federate tensor '" + *kept + "', which this device keeps personal "
                            "(its personalization.personal = [" + options_.personal.describe() + "]); not taking part";
    step_ = Step::kFinished;
    return {out::ReportError{v1::ERROR_CODE_PRIVACY_REFUSED, why}, out::Finish{out::Outcome::kRefused, why}};
  }
  record_.privacy = std::get<std::optional<DeviceCharge>>(std::move(judged));
  if (sum) {
    if (!task_.secure) return protocol_error(v1::ERROR_CODE_UNEXPECTED_MESSAGE, "a secure-sum task without secure aggregation");
    if (options_.contribution->size() != task_.secure->config.vector_length) {
      return finish(out::Outcome::kFailed,
                    "the aggregator's secure sum takes " + std::to_string(task_.secure->config.vector_length) +
                        " integers, the contribution has " + std::to_string(options_.contribution->size()),
                    true);
    }
    if (auto over = dp::bound_violation(*options_.contribution, task_.secure->bound)) {
      return finish(out::Outcome::kRefused, "the contribution is refused, not clipped: " + *over, true);
    }
    metrics_.num_examples = 1;  // one contribution
    record_.num_examples = 1;
    record_.secure = true;
    if (task_.secure->noise) return contribute_with_noise(*options_.contribution);
    return start_secure(*options_.contribution);
  }
  step_ = Step::kTraining;
  ml::TrainingPlan plan = task_.plan;
  plan.seed = ml::client_training_seed(plan.seed, options_.client_id);
  return {out::Fit{task_.round_id, task_.global_model.get(), plan}};
}

Outputs Participant::on_fitted(Fitted fitted, TimePoint now) {
  if (step_ != Step::kTraining) {
    throw std::logic_error(std::string("Participant::on_fitted while ") + step_name(step_));
  }
  if (deadline_ && now >= *deadline_) {
    return finish(out::Outcome::kDeadline, "training ended after the task's deadline; nothing was sent");
  }
  model::ModelParameters delta;
  const model::ModelParameters& produced = fitted.local_model ? *fitted.local_model : *fitted.delta;
  if (auto mismatch = produced.layout_mismatch(*task_.global_model)) {
    return finish(out::Outcome::kFailed, "the trainer returned a model that does not match the global model: " + *mismatch,
                  true);
  }
  delta = fitted.local_model ? model::subtract(*fitted.local_model, *task_.global_model) : std::move(*fitted.delta);
  metrics_ = fitted.metrics;
  if (options_.report_local_evaluation) local_evaluation_ = fitted.local_evaluation;
  if (options_.report_local_evaluation || options_.report_local_in_secure_sum) {
    histogram_evaluation_ = fitted.local_evaluation;
  }
  record_.num_examples = metrics_.num_examples;
  record_.train_loss = metrics_.mean_loss;
  return privatize(std::move(delta), metrics_);
}

// What leaves the device: in a plain round the delta, clipped to the plan's clip_norm when it has one; in a secure
// round clipped to clip_norm and quantized with rounding coins from the injected source, or, under distributed DP,
// encoded with its noise share.
Outputs Participant::privatize(model::ModelParameters delta, const ml::TrainMetrics& metrics) {
  if (auto bad = delta.first_non_finite()) {
    const std::string message = "local training diverged: " + *bad;
    step_ = Step::kFinished;
    return {out::ReportError{v1::ERROR_CODE_INVALID_UPDATE, message},
            out::Finish{out::Outcome::kDiverged, message + "; no update sent"}};
  }
  record_.update_l2_norm = model::l2_norm(delta);
  if (task_.plain_noise) return privatize_plain_with_noise(delta, metrics);
  if (!task_.secure) {
    if (task_.plan.clip_norm > 0) {  // the round's bound: the coordinator enforces it too
      model::clip_to_norm(delta, task_.plan.clip_norm);
      record_.update_l2_norm = std::min(record_.update_l2_norm, task_.plan.clip_norm);
      record_.clip_norm = task_.plan.clip_norm;
    }
    step_ = Step::kUploaded;
    record_.sent = true;
    return {out::Upload{task_.round_id, metrics, std::move(delta), 32, local_evaluation_}};
  }
  const SecureAssignment& sa = *task_.secure;
  std::vector<float> flat = secagg::flatten_floating(delta);
  const bool counted = sa.noise && sa.noise->clipped_count_weight > 0;  // adaptive clipping's extra coordinate
  const std::uint64_t expected = sa.noise ? sa.noise->ddg.dimension - (counted ? 1 : 0)
                                           : sa.config.vector_length - 2ull * sa.evaluation_bins;
  if (flat.size() != expected) {
    return protocol_error(v1::ERROR_CODE_INVALID_UPDATE, "secure aggregation expects " + std::to_string(expected) +
                                                             " values, the update has " + std::to_string(flat.size()));
  }
  if (sa.noise) return privatize_with_noise(std::move(flat));
  return guarded([&] {
    const secagg::Quantizer quantizer({sa.clip_norm, sa.config.n, sa.config.bits});
    std::array<std::uint8_t, 32> coin_seed{};
    random_->fill(coin_seed);
    record_.secure = true;
    record_.clip_norm = sa.clip_norm;
    auto input = quantizer.encode_with_coin_seed(flat, coin_seed, &record_.update_l2_norm);
    if (sa.evaluation_bins > 0) {  // the histogram replaces the clear report
      const auto histogram = ml::accuracy_histogram_words(histogram_evaluation_, sa.evaluation_bins);
      input.insert(input.end(), histogram.begin(), histogram.end());
      local_evaluation_.reset();
    }
    return start_secure(std::move(input));
  });
}

// Distributed DP: the update is clipped, rotated, scaled, rounded and noised here, on the device (ddg_encoding.h);
// the rounding coins and the noise come from a stream keyed by the injected source.
Outputs Participant::privatize_with_noise(std::vector<float> flat) {
  const SecureAssignment& sa = *task_.secure;
  if (const double weight = sa.noise->clipped_count_weight; weight > 0) {  // adaptive clipping: the norm's bit too
    flat = dp::with_clipped_count(std::move(flat), record_.update_l2_norm, sa.clip_norm, weight);
  }
  return guarded([&] {
    std::array<std::uint8_t, 32> stream_key{};
    random_->fill(stream_key);
    crypto::RandomStream stream(stream_key);
    record_.secure = true;
    record_.clip_norm = sa.clip_norm;
    record_.update_l2_norm = std::min(record_.update_l2_norm, sa.clip_norm);
    auto input = dp::ddg_encode(flat, sa.noise->ddg, sa.noise->rotation_seed, stream,
                                sa.noise->source != NoiseSource::kAggregator);
    if (sa.evaluation_bins > 0) {  // the histograms, with this device's noise share of their own
      auto histogram = ml::accuracy_histogram_words(histogram_evaluation_, sa.evaluation_bins);
      dp::add_discrete_gaussian_mod(histogram, sa.noise->histogram_local_stddev, sa.config.bits, stream);
      input.insert(input.end(), histogram.begin(), histogram.end());
      local_evaluation_.reset();
    }
    return start_secure(std::move(input));
  });
}

// A private secure sum: the bounded integers carry this device's discrete Gaussian share (none in central mode).
Outputs Participant::contribute_with_noise(std::vector<std::uint32_t> input) {
  const DistributedNoise& noise = *task_.secure->noise;
  if (!noise.integer_sum) {
    return protocol_error(v1::ERROR_CODE_UNEXPECTED_MESSAGE, "a secure-sum task whose noise plan is for training");
  }
  return guarded([&] {
    if (noise.source != NoiseSource::kAggregator) {
      std::array<std::uint8_t, 32> stream_key{};
      random_->fill(stream_key);
      crypto::RandomStream stream(stream_key);
      dp::add_discrete_gaussian_mod(input, noise.ddg.local_stddev, task_.secure->config.bits, stream);
    }
    record_.clip_norm = noise.ddg.l2_bound;
    return start_secure(std::move(input));
  });
}

// A plain round under DP. Central: the update clipped to the plan's norm (the aggregator adds all the noise).
// Local: clipped, rounded on the grid, noised with the whole noise and decoded here; nothing else about it is told.
Outputs Participant::privatize_plain_with_noise(model::ModelParameters delta, const ml::TrainMetrics& metrics) {
  const DistributedNoise& noise = *task_.plain_noise;
  if (noise.integer_sum || noise.source == NoiseSource::kShares) {
    return protocol_error(v1::ERROR_CODE_UNEXPECTED_MESSAGE, "a plain round's noise must be central or local");
  }
  // Under adaptive clipping the mechanism's clip norm bounds [update, clipped count]; the update's own is the plan's
  // (the aggregator reads the count from whether the update arrives at that norm).
  const double clip = noise.clipped_count_weight > 0 ? task_.plan.clip_norm : noise.ddg.clip_norm;
  record_.clip_norm = clip;
  record_.update_l2_norm = std::min(record_.update_l2_norm, clip);
  step_ = Step::kUploaded;
  record_.sent = true;
  if (noise.source == NoiseSource::kAggregator) {
    model::clip_to_norm(delta, clip);
    return {out::Upload{task_.round_id, metrics, std::move(delta)}};
  }
  return guarded([&] {
    std::array<std::uint8_t, 32> stream_key{};
    random_->fill(stream_key);
    crypto::RandomStream stream(stream_key);
    const auto noised = dp::ddg_noised_update(secagg::flatten_floating(delta), noise.ddg, noise.rotation_seed, stream);
    return Outputs{out::Upload{task_.round_id, ml::TrainMetrics{1, 0, 0, 0, 0, 0},
                               secagg::unflatten_floating(noised, delta)}};
  });
}

Outputs Participant::start_secure(std::vector<std::uint32_t> input) {
  return guarded([&] {
    session_ = std::make_unique<secagg::ClientSession>(task_.secure->config, task_.secure->my_index, std::move(input),
                                                       [this](std::span<std::uint8_t> out) { random_->fill(out); });
    Outputs out{out::AdvertiseKeys{session_->start()}};
    step_ = Step::kAdvertised;
    return out;
  });
}

Outputs Participant::on_key_directory(const secagg::KeyDirectory& directory, TimePoint) {
  if (auto refused = refuse_unless(Step::kAdvertised, "a key directory")) return *refused;
  return guarded([&] {
    Outputs out{out::ShareKeys{session_->on_key_directory(directory).shares}};
    step_ = Step::kShared;
    return out;
  });
}

Outputs Participant::on_shares(const secagg::SharesForYou& shares, TimePoint) {
  if (auto refused = refuse_unless(Step::kShared, "key shares")) return *refused;
  return guarded([&] {
    auto answer = session_->on_shares(shares);
    Outputs out;
    if (answer.accusation) out.push_back(out::Accuse{std::move(*answer.accusation)});
    // Under distributed DP nothing about the update travels in the clear: one participation, no loss or timing.
    const ml::TrainMetrics told = task_.secure->noise ? ml::TrainMetrics{1, 0, 0, 0, 0, 0} : metrics_;
    out.push_back(out::Upload{task_.round_id, told, std::move(answer.input), task_.secure->config.bits,
                              task_.secure->noise ? std::nullopt : local_evaluation_});
    step_ = Step::kUploaded;
    record_.sent = true;
    return out;
  });
}

Outputs Participant::on_unmask_request(const secagg::UnmaskRequest& request, TimePoint) {
  if (auto refused = refuse_unless(Step::kUploaded, "an unmask request")) return *refused;
  if (!session_) return protocol_error(v1::ERROR_CODE_UNEXPECTED_MESSAGE, "an unmask request in a plain round");
  return guarded([&] {
    Outputs out{out::UnmaskResponse{session_->on_unmask_request(request)}};
    step_ = Step::kUnmasked;
    return out;
  });
}

Outputs Participant::on_result(const RoundResult& result, TimePoint) {
  if (step_ == Step::kFinished) return {};
  if (step_ == Step::kAwaitingTask) {
    return protocol_error(v1::ERROR_CODE_UNEXPECTED_MESSAGE, "the aggregator sent a round result before the task");
  }
  if (result.round_id != task_.round_id) {
    return protocol_error(v1::ERROR_CODE_WRONG_ROUND, "the aggregator sent the result of round " +
                                                          std::to_string(result.round_id) + " during round " +
                                                          std::to_string(task_.round_id));
  }
  step_ = Step::kFinished;
  session_.reset();
  return {out::Finish{result.completed ? out::Outcome::kCompleted : out::Outcome::kAbandoned, result.message,
                      result.training_finished}};
}

Outputs Participant::on_tick(TimePoint now) {
  if (step_ == Step::kTraining && deadline_ && now >= *deadline_) {
    return finish(out::Outcome::kDeadline, "the task's deadline passed before the update was sent");
  }
  return {};
}

Outputs Participant::finish(out::Outcome outcome, std::string message, bool fatal) {
  step_ = Step::kFinished;
  session_.reset();
  return {out::Finish{outcome, std::move(message), false, fatal}};
}

Outputs Participant::protocol_error(v1::ErrorCode code, const std::string& message) {
  step_ = Step::kFinished;
  session_.reset();
  return {out::ReportError{code, message}, out::Finish{out::Outcome::kFailed, message}};
}

std::optional<Outputs> Participant::refuse_unless(Step expected, const char* what) {
  if (step_ == Step::kFinished) return Outputs{};
  if (step_ == expected) return std::nullopt;
  return protocol_error(v1::ERROR_CODE_UNEXPECTED_MESSAGE,
                        std::string("the aggregator sent ") + what + " while this client was " + step_name(step_));
}

// The SecAgg+ session and the quantizer refuse what they cannot accept by throwing; here that becomes an error
// report and the end of the round.
template <typename Body>
Outputs Participant::guarded(Body&& body) {
  try {
    return body();
  } catch (const Error& e) {
    return protocol_error(v1::ERROR_CODE_UNEXPECTED_MESSAGE, std::string("secure aggregation: ") + e.what());
  }
}

}  // namespace sotto::round
