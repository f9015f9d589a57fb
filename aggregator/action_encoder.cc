#include "aggregator/action_encoder.h"

#include "common/codec/model_stream.h"
#include "common/codec/plan_codec.h"
#include "common/round/message_codec.h"
#include "common/secagg/wire_codec.h"

namespace sotto::aggregator {

namespace {

std::uint32_t milliseconds(Duration d) {
  return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

}  // namespace

v1::Envelope encode(const action::Admit& a) {
  v1::Envelope env;
  env.mutable_admit()->set_round_id(a.round_id);
  return env;
}

v1::Envelope encode(const action::RetryLater& a) {
  v1::Envelope env;
  env.mutable_retry_later()->set_delay_ms(milliseconds(a.delay));
  env.mutable_retry_later()->set_reason(a.reason);
  return env;
}

v1::Envelope encode(const action::SendRoundResult& a) {
  v1::Envelope env;
  auto* r = env.mutable_round_result();
  r->set_round_id(a.round_id);
  r->set_outcome(a.completed ? v1::ROUND_OUTCOME_COMPLETED : v1::ROUND_OUTCOME_ABANDONED);
  r->set_survivors(a.survivors);
  r->set_training_finished(a.training_finished);
  r->set_message(a.message);
  return env;
}

v1::Envelope encode(const action::SendFinished& a) {
  v1::Envelope env;
  env.mutable_finished()->set_rounds_completed(a.rounds_completed);
  return env;
}

v1::Envelope encode(const action::Reject& a) {
  v1::Envelope env;
  env.mutable_error()->set_code(a.code);
  env.mutable_error()->set_message(a.message);
  return env;
}

v1::Envelope encode(const action::SendKeyDirectory& a) {
  v1::Envelope env;
  *env.mutable_secagg_key_directory() = secagg::to_proto(a.directory);
  return env;
}

v1::Envelope encode(const action::SendShares& a) {
  v1::Envelope env;
  *env.mutable_secagg_shares() = secagg::to_proto(a.shares);
  return env;
}

v1::Envelope encode(const action::SendUnmaskRequest& a) {
  v1::Envelope env;
  *env.mutable_secagg_unmask_request() = secagg::to_proto(a.request);
  return env;
}

v1::Envelope encode_task(const action::SendTask& task, ConnectionId conn, const codec::ModelDigest& model_sha256) {
  v1::Envelope env;
  auto* t = env.mutable_task();
  t->set_round_id(task.round_id);
  *t->mutable_plan() = codec::plan_to_proto(task.plan);
  *t->mutable_model() = codec::make_manifest(*task.model);
  t->set_deadline_ms(milliseconds(task.deadline));
  t->set_model_sha256(model_sha256.data(), model_sha256.size());
  if (task.secure_sum) t->set_kind(v1::TASK_KIND_SECURE_SUM);
  if (task.plain_noise) *t->mutable_plain_dp() = round::to_proto(*task.plain_noise);
  if (task.secagg) {
    *t->mutable_secagg() = round::to_proto(round::SecureAssignment{task.secagg->config, task.secagg->index.at(conn),
                                                                   task.secagg->clip_norm, task.secagg->bound,
                                                                   task.secagg->noise, task.secagg->evaluation_bins});
  }
  return env;
}

}  // namespace sotto::aggregator
