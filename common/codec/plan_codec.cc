#include "common/codec/plan_codec.h"

#include <cmath>

#include "common/util/error.h"

namespace sotto::codec {

namespace {

constexpr int kMaxPersonalPatterns = 256;
constexpr std::size_t kMaxPatternLength = 256;

}  // namespace

v1::TrainingPlan plan_to_proto(const ml::TrainingPlan& plan) {
  v1::TrainingPlan p;
  p.set_epochs(plan.epochs);
  p.set_batch_size(plan.batch_size);
  p.set_optimizer(plan.optimizer);
  p.set_learning_rate(plan.learning_rate);
  p.set_momentum(plan.momentum);
  p.set_weight_decay(plan.weight_decay);
  p.set_seed(plan.seed);
  p.set_proximal_mu(plan.proximal_mu);
  p.set_clip_norm(plan.clip_norm);
  for (const auto& pattern : plan.personal) p.add_personal(pattern);
  p.set_finetune_epochs(plan.finetune_epochs);
  p.set_ditto_lambda(plan.ditto_lambda);
  p.set_head_epochs(plan.head_epochs);
  return p;
}

ml::TrainingPlan plan_from_proto(const v1::TrainingPlan& p) {
  if (p.epochs() == 0 || p.epochs() > 1000)
    throw Error("training plan: epochs must be 1..1000, got " + std::to_string(p.epochs()));
  if (p.batch_size() == 0) throw Error("training plan: batch_size must be positive");
  if (p.optimizer() != "sgd" && p.optimizer() != "adam") {
    throw Error("training plan: unknown optimizer \"" + p.optimizer() + "\" (expected sgd or adam)");
  }
  if (!(p.learning_rate() > 0) || !std::isfinite(p.learning_rate()))
    throw Error("training plan: learning_rate must be a positive number");
  if (!(p.momentum() >= 0 && p.momentum() < 1)) throw Error("training plan: momentum must be in [0, 1)");
  if (!(p.weight_decay() >= 0) || !std::isfinite(p.weight_decay()))
    throw Error("training plan: weight_decay must be >= 0");
  if (!(p.proximal_mu() >= 0) || !std::isfinite(p.proximal_mu())) {
    throw Error("training plan: proximal_mu must be a finite number >= 0, got " + std::to_string(p.proximal_mu()));
  }
  if (!(p.clip_norm() >= 0) || !std::isfinite(p.clip_norm())) {
    throw Error("training plan: clip_norm must be a finite number >= 0, got " + std::to_string(p.clip_norm()));
  }
  if (p.personal_size() > kMaxPersonalPatterns) {
    throw Error("training plan: " + std::to_string(p.personal_size()) + " personal-tensor patterns, more than the " +
                std::to_string(kMaxPersonalPatterns) + " allowed");
  }
  for (const auto& pattern : p.personal()) {
    if (pattern.empty() || pattern.size() > kMaxPatternLength) {
      throw Error("training plan: a personal-tensor pattern must be 1 to " + std::to_string(kMaxPatternLength) +
                  " characters, got " + std::to_string(pattern.size()));
    }
  }
  if (p.finetune_epochs() > 1000 || p.head_epochs() > 1000) {
    throw Error("training plan: finetune_epochs and head_epochs must be at most 1000");
  }
  if (!(p.ditto_lambda() >= 0) || !std::isfinite(p.ditto_lambda())) {
    throw Error("training plan: ditto_lambda must be a finite number >= 0");
  }
  if (p.finetune_epochs() > 0 && p.ditto_lambda() > 0) {
    throw Error("training plan: fine-tuning and Ditto both asked for; the device keeps one personal model");
  }
  if (p.head_epochs() > 0 && p.personal_size() == 0) {
    throw Error("training plan: head_epochs without personal tensors: FedRep trains a personal head first");
  }
  ml::TrainingPlan plan;
  plan.finetune_epochs = p.finetune_epochs();
  plan.ditto_lambda = p.ditto_lambda();
  plan.head_epochs = p.head_epochs();
  plan.personal.assign(p.personal().begin(), p.personal().end());
  plan.clip_norm = p.clip_norm();
  plan.epochs = p.epochs();
  plan.batch_size = p.batch_size();
  plan.optimizer = p.optimizer();
  plan.learning_rate = p.learning_rate();
  plan.momentum = p.momentum();
  plan.weight_decay = p.weight_decay();
  plan.seed = p.seed();
  plan.proximal_mu = p.proximal_mu();
  return plan;
}

}  // namespace sotto::codec
