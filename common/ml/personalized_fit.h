// PersonalizedFit: one device's training in a round when the plan personalizes — the part a real client
// (client::ImageTrainer) and a virtual one (sotto-sim's TrainingPool) share, over any ml::ImageModel.
//
// The model starts loaded with the global model completed by the device's own personal tensors. Then: FedRep's head
// epochs (the body frozen) and the federated epochs (the head frozen), or just the plan's epochs; then the device's
// personal model — a fine-tuned copy of the start, or Ditto's v trained from its last value toward the start; then,
// when the device holds examples out, the start's and the personal model's accuracy on them. No LibTorch here.
#pragma once

#include <functional>
#include <optional>

#include "common/data/image_dataset.h"
#include "common/ml/image_model.h"
#include "common/model/personal_tensors.h"

namespace sotto::ml {

// Trains the model from its current parameters with `plan`: the device's wrapper around ImageModel::train (its
// examples, its stop checks).
using TrainPhase = std::function<TrainMetrics(const TrainingPlan& plan)>;

struct PersonalizedFit {
  TrainMetrics metrics;  // of the federated training
  model::ModelParameters local_model;  // the whole model after it, personal tensors included
  std::optional<model::ModelParameters> personal_model;  // fine-tuned, or Ditto's v; the device's own, never sent
  std::optional<LocalEvaluation> local_evaluation;  // with held-out examples
};

// `given` (the global model, perhaps without the personal tensors) completed with the device's own tensors where
// it lacks them; `own` gives those (the whole model as the device holds it) and is called only when `personal` is
// not empty and `given` lacks some. Throws sotto::Error naming a tensor of the device's model that `given` lacks and
// the plan does not make personal.
model::ModelParameters complete_with_personal(const model::ModelParameters& given,
                                              const std::function<model::ModelParameters()>& own,
                                              const model::PersonalTensors& personal);

// The round's training of `model`, loaded with the start (see above). `ditto_model` is Ditto's v from the last
// round (the start when absent or of another layout). Leaves `model` holding `local_model`.
PersonalizedFit fit_personalized(ImageModel& model, const TrainingPlan& plan, const TrainPhase& train,
                                 const std::optional<model::ModelParameters>& ditto_model,
                                 const data::ImageDataset& local_test);

// Without a round's training: `model` loaded with the start, the start's accuracy on `local_test` against the
// personal model's — fine-tuned from the start when the plan fine-tunes, else `personal_model` when given, else the
// start itself. How sotto-sim measures every client after the last round.
LocalEvaluation evaluate_personalization(ImageModel& model, const TrainingPlan& plan, const TrainPhase& train,
                                         const std::optional<model::ModelParameters>& personal_model,
                                         const data::ImageDataset& local_test);

}  // namespace sotto::ml
