#include "common/ml/personalized_fit.h"

#include <memory>

#include "common/util/error.h"

namespace sotto::ml {

namespace {

// FedRep: the personal head first, the body frozen; then the body, the head frozen. Otherwise the plan's epochs.
TrainMetrics train_federated(ImageModel& model, const TrainingPlan& plan, const TrainPhase& train) {
  if (plan.head_epochs == 0) return train(plan);
  const model::PersonalTensors personal(plan.personal);
  TrainingPlan head = plan;
  head.epochs = plan.head_epochs;
  const model::ModelParameters current = model.parameters();
  for (const auto& t : current.tensors()) {
    if (!personal.is_personal(t.name)) head.frozen.push_back(t.name);
  }
  train(head);
  TrainingPlan body = plan;
  body.frozen = plan.personal;
  return train(body);
}

// The device's personal model from `start`: fine-tuned, or Ditto's v pulled toward the start.
model::ModelParameters adapt(ImageModel& model, const model::ModelParameters& start, const TrainingPlan& plan,
                             const TrainPhase& train, const std::optional<model::ModelParameters>& ditto_model) {
  TrainingPlan local = plan;
  local.head_epochs = 0;
  if (plan.finetune_epochs > 0) {
    local.epochs = plan.finetune_epochs;
    model.load(start);
  } else {
    local.proximal_mu = plan.ditto_lambda;
    local.proximal_anchor = std::make_shared<const model::ModelParameters>(start);
    model.load(ditto_model && !ditto_model->layout_mismatch(start) ? *ditto_model : start);
  }
  train(local);
  return model.parameters();
}

double accuracy_of(ImageModel& model, const model::ModelParameters& params, const data::ImageDataset& test) {
  model.load(params);
  return model.evaluate(test).accuracy;
}

}  // namespace

model::ModelParameters complete_with_personal(const model::ModelParameters& given,
                                              const std::function<model::ModelParameters()>& own_model,
                                              const model::PersonalTensors& personal) {
  if (personal.empty()) return given;
  model::ModelParameters own = own_model();
  if (given.size() == own.size()) return given;
  for (const auto& t : own.tensors()) {
    if (!given.find(t.name) && !personal.is_personal(t.name)) {
      throw Error("tensor '" + t.name + "' of the model is missing from the " + std::to_string(given.size()) +
                  " given tensors, and the plan does not make it personal (personalization.personal = [" +
                  personal.describe() + "])");
    }
  }
  return model::with_tensors(std::move(own), given);
}

PersonalizedFit fit_personalized(ImageModel& model, const TrainingPlan& plan, const TrainPhase& train,
                                 const std::optional<model::ModelParameters>& ditto_model,
                                 const data::ImageDataset& local_test) {
  const bool adapts = plan.adapts();
  const bool evaluates = local_test.size() > 0;
  // The model as received, kept only when adapting or evaluating needs it (a copy of the whole model).
  std::optional<model::ModelParameters> start;
  if (adapts || evaluates) start = model.parameters();
  PersonalizedFit result;
  result.metrics = train_federated(model, plan, train);
  result.local_model = model.parameters();
  if (adapts) result.personal_model = adapt(model, *start, plan, train, ditto_model);
  if (evaluates) {
    LocalEvaluation e;
    e.examples = local_test.size();
    e.global_accuracy = accuracy_of(model, *start, local_test);
    e.personal_accuracy =
        accuracy_of(model, result.personal_model ? *result.personal_model : result.local_model, local_test);
    result.local_evaluation = e;
  }
  // Both loaded other models: the next round's personal tensors are the trained ones, not the adapted.
  if (adapts || evaluates) model.load(result.local_model);
  return result;
}

LocalEvaluation evaluate_personalization(ImageModel& model, const TrainingPlan& plan, const TrainPhase& train,
                                         const std::optional<model::ModelParameters>& personal_model,
                                         const data::ImageDataset& local_test) {
  if (local_test.size() == 0) throw Error("no held-out examples to evaluate on (evaluation.local_fraction is 0)");
  LocalEvaluation e;
  e.examples = local_test.size();
  e.global_accuracy = model.evaluate(local_test).accuracy;
  e.personal_accuracy = e.global_accuracy;
  if (plan.finetune_epochs > 0) {
    const model::ModelParameters start = model.parameters();
    e.personal_accuracy = accuracy_of(model, adapt(model, start, plan, train, std::nullopt), local_test);
  } else if (personal_model) {
    e.personal_accuracy = accuracy_of(model, *personal_model, local_test);
  }
  return e;
}

}  // namespace sotto::ml
