#include "common/round/message_codec.h"

#include <algorithm>
#include <cmath>

#include "common/codec/model_stream.h"
#include "common/codec/plan_codec.h"
#include "common/dp/adaptive_clipping.h"
#include "common/ml/accuracy_histogram.h"
#include "common/secagg/update_vector.h"
#include "common/secagg/wire_codec.h"
#include "common/util/error.h"

namespace sotto::round {

v1::SecAggTask to_proto(const SecureAssignment& a) {
  v1::SecAggTask p;
  p.set_n(a.config.n);
  p.set_k(a.config.k);
  p.set_t(a.config.t);
  p.set_vector_length(a.config.vector_length);
  p.set_clip_norm(a.clip_norm);
  p.set_bits(a.config.bits);
  p.set_my_index(a.my_index);
  p.set_graph_seed(std::string(a.config.graph_seed.begin(), a.config.graph_seed.end()));
  p.set_linf_bound(a.bound.linf);
  p.set_l1_bound(a.bound.l1);
  p.set_evaluation_bins(a.evaluation_bins);
  if (a.noise) *p.mutable_ddg() = to_proto(*a.noise);
  return p;
}

v1::DistributedDpPlan to_proto(const DistributedNoise& noise) {
  v1::DistributedDpPlan plan;
  {
    const auto& d = noise.ddg;
    auto* q = &plan;
    q->set_dimension(d.dimension);
    q->set_padded(d.padded);
    q->set_scale(d.scale);
    q->set_l2_bound(d.l2_bound);
    q->set_l1_bound(d.l1_bound);
    q->set_local_stddev(d.local_stddev);
    q->set_noise_multiplier(d.noise_multiplier);
    q->set_honest(d.honest);
    q->set_min_survivors(noise.min_survivors);
    q->set_rotation_seed(std::string(noise.rotation_seed.begin(), noise.rotation_seed.end()));
    q->set_epsilon_after(noise.epsilon_stated);
    q->set_central(noise.source == NoiseSource::kAggregator);
    q->set_local(noise.source == NoiseSource::kOwn);
    q->set_integer_sum(noise.integer_sum);
    q->set_clipped_count_weight(noise.clipped_count_weight);
    q->set_histogram_local_stddev(noise.histogram_local_stddev);
  }
  return plan;
}

namespace {

// The plan's DDG parameters, checked for what would make the encoding fail or lie (the device's own floors on the
// noise are its privacy settings' business).
// `secure`: the secure round's assignment; none for a plain round's plan, which has no modulus, no vector length to
// match and no contribution bound, and whose clip norm is the training plan's.
DistributedNoise noise_from_proto(const v1::DistributedDpPlan& q, const SecureAssignment* secure,
                                  double plain_clip_norm = 0) {
  auto fail = [](const std::string& what) { throw Error("task: distributed DP plan: " + what); };
  const SecureAssignment plain;
  const SecureAssignment& a = secure ? *secure : plain;
  DistributedNoise n;
  auto& d = n.ddg;
  d.bits = secure ? a.config.bits : 32;
  d.clip_norm = secure ? a.clip_norm : plain_clip_norm;
  d.dimension = q.dimension();
  d.padded = q.padded();
  d.scale = q.scale();
  d.l2_bound = q.l2_bound();
  d.l1_bound = q.l1_bound();
  d.local_stddev = q.local_stddev();
  d.noise_multiplier = q.noise_multiplier();
  d.honest = q.honest();
  n.min_survivors = q.min_survivors();
  n.epsilon_stated = q.epsilon_after();
  if (q.central() && q.local()) fail("the noise cannot be both central and local");
  n.source = q.central() ? NoiseSource::kAggregator : q.local() ? NoiseSource::kOwn : NoiseSource::kShares;
  if (n.source == NoiseSource::kOwn && d.honest != 1) fail("local noise is each client's alone: honest must be 1");
  n.integer_sum = q.integer_sum();
  if (n.integer_sum) {  // the sensitivity follows from the bounds the device enforces, not the plan's numbers
    if (!a.bound.bounded()) fail("a private secure sum needs a contribution bound (linf_bound or l1_bound)");
    if (d.dimension < 1 || d.padded != d.dimension || d.scale != 1) {
      fail("a private secure sum has scale 1 and no padding");
    }
    d.clip_norm = d.l2_bound = dp::l2_sensitivity(a.bound, d.dimension);
    d.l1_bound = dp::l1_sensitivity(a.bound, d.dimension);
  } else if (d.dimension < 1 || d.padded != dp::padded_dimension(static_cast<std::size_t>(d.dimension))) {
    fail("padded must be the power of two just above the dimension");
  }
  n.clipped_count_weight = q.clipped_count_weight();
  if (n.clipped_count_weight != 0) {  // the joint bound follows from the update's clip norm and the weight
    if (!(n.clipped_count_weight > 0) || !std::isfinite(n.clipped_count_weight) || n.integer_sum) {
      fail("the clipped-count weight must be positive and finite, and only in a training round");
    }
    d.clip_norm = dp::joint_clip_norm(d.clip_norm, n.clipped_count_weight);
  }
  if (!secure) {
    if (n.source == NoiseSource::kShares || n.integer_sum) fail("a plain round's noise is central or local");
    if (n.clipped_count_weight != 0 && n.source != NoiseSource::kAggregator) {
      fail("adaptive clipping in a plain round needs central noise: its count is summed under the aggregator's");
    }
    if (n.clipped_count_weight != 0 && !(plain_clip_norm > 0)) fail("adaptive clipping needs the plan's clip norm");
  } else if (a.config.vector_length != d.padded + 2ull * a.evaluation_bins) {
    fail("the secure vector length must be the padded dimension (and the accuracy histograms' words)");
  }
  n.histogram_local_stddev = q.histogram_local_stddev();
  if (a.evaluation_bins > 0) {  // the histograms carry their own noise share, as the update does
    if (n.source != NoiseSource::kShares || n.integer_sum) fail("accuracy histograms under DP need distributed noise");
    if (!(n.histogram_local_stddev > 0) || !std::isfinite(n.histogram_local_stddev)) {
      fail("accuracy histograms under distributed DP need a positive, finite histogram_local_stddev");
    }
  } else if (n.histogram_local_stddev != 0) {
    fail("a histogram noise share without accuracy histograms");
  }
  for (double v : {d.scale, d.l2_bound, d.l1_bound, d.local_stddev, d.noise_multiplier, d.clip_norm}) {
    if (!(v > 0) || !std::isfinite(v)) fail("scale, bounds, noise and clip norm must be positive and finite");
  }
  if (d.l2_bound < d.clip_norm * d.scale) fail("the rounding bound is below the scaled clip norm");
  if (d.l2_bound >= 0x1p52) fail("the rounding bound is too large for exact integer rounding (2^52 or more)");
  if (q.rotation_seed().size() != n.rotation_seed.size()) fail("the rotation seed must be 32 bytes");
  std::copy(q.rotation_seed().begin(), q.rotation_seed().end(), n.rotation_seed.begin());
  return n;
}

// Accuracy histograms ride only on a training round (under distributed DP with their own noise share), after at
// least one update word.
void check_evaluation_bins(const SecureAssignment& a) {
  const auto fail = [](const std::string& what) { throw Error("task assignment: secagg.evaluation_bins: " + what); };
  if (a.evaluation_bins > ml::kMaxAccuracyBins) {
    fail(std::to_string(a.evaluation_bins) + " is over the most, " + std::to_string(ml::kMaxAccuracyBins));
  }
  if (a.bound.bounded()) fail("only a training round carries an accuracy histogram");
  if (a.config.vector_length <= 2ull * a.evaluation_bins) {
    fail("the vector (" + std::to_string(a.config.vector_length) + " words) has no room for the update and " +
         std::to_string(2ull * a.evaluation_bins) + " histogram words");
  }
}

}  // namespace

SecureAssignment from_proto(const v1::SecAggTask& p, std::uint64_t round_id) {
  SecureAssignment a;
  a.config = {round_id, p.n(), p.k(), p.t(), p.vector_length(), p.bits() == 0 ? 32u : p.bits()};
  if (p.graph_seed().size() != a.config.graph_seed.size()) {
    throw Error("task assignment: secagg.graph_seed has " + std::to_string(p.graph_seed().size()) +
                " bytes, expected 32; the aggregator may run an older protocol version");
  }
  std::copy(p.graph_seed().begin(), p.graph_seed().end(), a.config.graph_seed.begin());
  a.my_index = p.my_index();
  a.clip_norm = p.clip_norm();
  a.bound = {p.linf_bound(), p.l1_bound()};
  a.evaluation_bins = p.evaluation_bins();
  if (p.has_ddg()) a.noise = noise_from_proto(p.ddg(), &a);
  if (a.evaluation_bins > 0) check_evaluation_bins(a);
  return a;
}

Task task_from_proto(const v1::TaskAssignment& p, model::ModelParameters global_model) {
  Task t;
  t.round_id = p.round_id();
  t.kind = p.kind() == v1::TASK_KIND_SECURE_SUM ? TaskKind::kSecureSum : TaskKind::kTrain;
  t.plan = codec::plan_from_proto(p.plan());
  t.global_model = std::make_shared<const model::ModelParameters>(std::move(global_model));
  t.deadline = std::chrono::milliseconds(p.deadline_ms());
  if (p.has_secagg()) t.secure = from_proto(p.secagg(), p.round_id());
  if (p.has_plain_dp()) {
    if (t.secure) throw Error("task: a secure round's noise plan belongs in its secagg section, not plain_dp");
    t.plain_noise = noise_from_proto(p.plain_dp(), nullptr, t.plan.clip_norm);
  }
  if (!p.model_sha256().empty()) {
    std::array<std::uint8_t, 32> digest{};
    if (p.model_sha256().size() != digest.size()) {
      throw Error("the task's model_sha256 has " + std::to_string(p.model_sha256().size()) +
                  " bytes, not the 32 of a SHA-256: the aggregator sent a malformed task");
    }
    std::copy_n(reinterpret_cast<const std::uint8_t*>(p.model_sha256().data()), digest.size(), digest.begin());
    t.model_sha256 = digest;
  }
  return t;
}

RoundResult result_from_proto(const v1::RoundResult& p) {
  return {p.round_id(), p.outcome() == v1::ROUND_OUTCOME_COMPLETED, p.survivors(), p.training_finished(),
          p.message()};
}

model::ModelParameters upload_payload(const out::Upload& upload) {
  if (const auto* delta = std::get_if<model::ModelParameters>(&upload.payload)) return *delta;
  return secagg::masked_input_parameters(std::get<secagg::MaskedInput>(upload.payload).y, upload.bits);
}

model::ModelParameters upload_payload(out::Upload&& upload) {
  if (auto* delta = std::get_if<model::ModelParameters>(&upload.payload)) return std::move(*delta);
  return upload_payload(static_cast<const out::Upload&>(upload));
}

v1::UpdateUpload upload_header(const out::Upload& upload, const model::ModelParameters& payload) {
  v1::UpdateUpload u;
  u.set_round_id(upload.round_id);
  u.set_num_examples(upload.metrics.num_examples);
  u.set_train_loss(upload.metrics.mean_loss);
  u.set_train_accuracy(upload.metrics.accuracy);
  u.set_train_seconds(upload.metrics.seconds);
  if (const auto& e = upload.local_evaluation) {
    u.mutable_local_evaluation()->set_examples(e->examples);
    u.mutable_local_evaluation()->set_global_accuracy(e->global_accuracy);
    u.mutable_local_evaluation()->set_personal_accuracy(e->personal_accuracy);
  }
  *u.mutable_delta() = codec::make_manifest(payload);
  return u;
}

v1::Envelope to_envelope(const out::AdvertiseKeys& m) {
  v1::Envelope env;
  *env.mutable_secagg_advertise() = secagg::to_proto(m.keys);
  return env;
}

v1::Envelope to_envelope(const out::ShareKeys& m) {
  v1::Envelope env;
  *env.mutable_secagg_shares() = secagg::to_proto(m.shares);
  return env;
}

v1::Envelope to_envelope(const out::Accuse& m) {
  v1::Envelope env;
  *env.mutable_secagg_accusation() = secagg::to_proto(m.accusation);
  return env;
}

v1::Envelope to_envelope(const out::UnmaskResponse& m) {
  v1::Envelope env;
  *env.mutable_secagg_unmask_response() = secagg::to_proto(m.response);
  return env;
}

v1::Envelope to_envelope(const out::ReportError& m) {
  v1::Envelope env;
  env.mutable_error()->set_code(m.code);
  env.mutable_error()->set_message(m.message);
  return env;
}

}  // namespace sotto::round
