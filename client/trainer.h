// Trainer: what an app gives the client library so that it can take part in rounds — fit the global model on the
// device's own data and return the local model. The library computes the update (local minus global) and sends
// only that; the data never leaves the trainer.
//
// ImageTrainer (image_trainer.h) adapts common/ml's LibTorch models; an app with its own torch::nn::Module
// implements fit() with common/ml/torch_bridge.h. fit() asks `control` before every batch and stops when it says
// so (training_control.h), throwing TrainingStopped. No LibTorch, Boost or OpenSSL types appear here.
#pragma once

#include <optional>

#include "client/training_control.h"
#include "common/ml/training_plan.h"
#include "common/model/parameters.h"

namespace sotto::client {

struct FitResult {
  // The global model's tensors, trained; with personal tensors (plan.personal) it may hold those too, which the
  // client keeps on the device and never sends.
  model::ModelParameters local_model;
  ml::TrainMetrics metrics;            // metrics.num_examples is the FedAvg weight
  // With local adaptation (plan.finetune_epochs, plan.ditto_lambda): the device's personal model, the one the app
  // uses. Kept on the device, never sent.
  std::optional<model::ModelParameters> personal_model;
  // With held-out examples (evaluation.local_fraction): the global model's accuracy on them against the personal
  // model's. Sent only where the device reports it (evaluation.report_local) and the round adds no DP noise.
  std::optional<ml::LocalEvaluation> local_evaluation;
};

class Trainer {
 public:
  virtual ~Trainer() = default;
  virtual FitResult fit(const model::ModelParameters& global_model, const ml::TrainingPlan& plan,
                        TrainingControl& control) = 0;
  // The personal model the client kept from an earlier round (after a restart), for Ditto to go on from. Trainers
  // without local adaptation ignore it. The client restores it only when the trainer holds none.
  virtual void restore_personal_model(model::ModelParameters /*personal_model*/) {}
  virtual bool holds_personal_model() const { return false; }
  // The person opted out: drop whatever personal model or trained state is held in memory (the client deletes what
  // it stored). Called on the training thread before the next fit().
  virtual void forget_personal_model() {}
};

}  // namespace sotto::client
