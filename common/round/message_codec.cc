#include "common/round/message_codec.h"

#include <algorithm>

#include "common/codec/model_stream.h"
#include "common/codec/plan_codec.h"
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
  return p;
}

SecureAssignment from_proto(const v1::SecAggTask& p, std::uint64_t round_id) {
  SecureAssignment a;
  a.config = {round_id, p.n(), p.k(), p.t(), p.vector_length(), p.bits() == 0 ? 32u : p.bits()};
  a.my_index = p.my_index();
  a.clip_norm = p.clip_norm();
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
