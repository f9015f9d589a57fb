#include "client/image_trainer.h"

#include "common/model/personal_tensors.h"
#include "common/util/error.h"

namespace sotto::client {

ImageTrainer::ImageTrainer(std::unique_ptr<ml::ImageModel> model, std::shared_ptr<const data::ImageDataset> data,
                           std::vector<std::uint32_t> indices, const std::vector<std::uint32_t>& local_test)
    : model_(std::move(model)), data_(std::move(data)), indices_(std::move(indices)) {
  if (!model_ || !data_) throw Error("ImageTrainer needs a model and a data set");
  if (indices_.empty()) throw Error("ImageTrainer has no examples: the shard is empty");
  local_test_.rows = data_->rows;
  local_test_.cols = data_->cols;
  for (std::uint32_t i : local_test) {
    if (i >= data_->size()) throw Error("held-out example " + std::to_string(i) + " is not in the data set");
    const auto image = data_->image(i);
    local_test_.pixels.insert(local_test_.pixels.end(), image.begin(), image.end());
    local_test_.labels.push_back(data_->labels[i]);
  }
}

void ImageTrainer::load_with_personal_tensors(const model::ModelParameters& given, const ml::TrainingPlan& plan) {
  const model::PersonalTensors personal(plan.personal);
  if (personal.empty()) {
    model_->load(given);
    return;
  }
  model::ModelParameters current = model_->parameters();
  if (given.size() == current.size()) {
    model_->load(given);
    return;
  }
  for (const auto& t : current.tensors()) {
    if (!given.find(t.name) && !personal.is_personal(t.name)) {
      throw Error("tensor '" + t.name + "' of the model is missing from the " + std::to_string(given.size()) +
                  " given tensors, and the plan does not make it personal (personalization.personal = [" +
                  personal.describe() + "])");
    }
  }
  model_->load(model::with_tensors(std::move(current), given));
}

FitResult ImageTrainer::fit(const model::ModelParameters& global_model, const ml::TrainingPlan& plan,
                            TrainingControl& control) {
  try {
    load_with_personal_tensors(global_model, plan);
  } catch (const Error& e) {
    throw Error(std::string("the task's global model does not fit the model this device trains (set the client's "
                            "[model] section to the aggregator's): ") + e.what());
  }
  const bool adapts = plan.finetune_epochs > 0 || plan.ditto_lambda > 0;
  const bool evaluates = local_test_.size() > 0;
  // The model as received, kept only when adapting or evaluating needs it (a copy of the whole model).
  std::optional<model::ModelParameters> start;
  if (adapts || evaluates) start = model_->parameters();
  FitResult result;
  result.metrics = train_federated(plan, control);
  result.local_model = model_->parameters();
  if (adapts) result.personal_model = adapt(*start, plan, control);
  if (evaluates) result.local_evaluation = evaluate_locally(*start, result);
  // Both loaded other models: the next round's personal tensors are the trained ones, not the adapted.
  if (adapts || evaluates) model_->load(result.local_model);
  return result;
}

ml::LocalEvaluation ImageTrainer::evaluate_locally(const model::ModelParameters& start, const FitResult& result) {
  ml::LocalEvaluation e;
  e.examples = local_test_.size();
  model_->load(start);
  e.global_accuracy = model_->evaluate(local_test_).accuracy;
  model_->load(result.personal_model ? *result.personal_model : result.local_model);
  e.personal_accuracy = model_->evaluate(local_test_).accuracy;
  return e;
}

void ImageTrainer::restore_personal_model(model::ModelParameters personal_model) {
  personal_model_ = std::move(personal_model);
}

ml::TrainMetrics ImageTrainer::train_phase(const ml::TrainingPlan& plan, TrainingControl& control) {
  ml::TrainMetrics m = model_->train(*data_, indices_, plan, [&] { return control.next_batch(); });
  if (auto reason = control.stop_reason()) throw TrainingStopped(*reason);
  return m;
}

ml::TrainMetrics ImageTrainer::train_federated(const ml::TrainingPlan& plan, TrainingControl& control) {
  if (plan.head_epochs == 0) return train_phase(plan, control);
  // FedRep: the personal head first, the body frozen; then the body, the head frozen.
  const model::PersonalTensors personal(plan.personal);
  ml::TrainingPlan head = plan;
  head.epochs = plan.head_epochs;
  const model::ModelParameters current = model_->parameters();
  for (const auto& t : current.tensors()) {
    if (!personal.is_personal(t.name)) head.frozen.push_back(t.name);
  }
  train_phase(head, control);
  ml::TrainingPlan body = plan;
  body.frozen = plan.personal;
  return train_phase(body, control);
}

model::ModelParameters ImageTrainer::adapt(const model::ModelParameters& start, const ml::TrainingPlan& plan,
                                           TrainingControl& control) {
  ml::TrainingPlan local = plan;
  local.head_epochs = 0;
  if (plan.finetune_epochs > 0) {
    // Fine-tuning: a copy of the global model (with this device's personal tensors), trained on its data.
    local.epochs = plan.finetune_epochs;
    model_->load(start);
  } else {
    // Ditto: the personal model goes on from its last value, pulled toward the global model.
    local.proximal_mu = plan.ditto_lambda;
    local.proximal_anchor = std::make_shared<const model::ModelParameters>(start);
    model_->load(personal_model_ && !personal_model_->layout_mismatch(start) ? *personal_model_ : start);
  }
  train_phase(local, control);
  personal_model_ = model_->parameters();
  return *personal_model_;
}

}  // namespace sotto::client
