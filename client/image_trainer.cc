#include "client/image_trainer.h"

#include "common/ml/personalized_fit.h"
#include "common/util/error.h"

namespace sotto::client {

ImageTrainer::ImageTrainer(std::unique_ptr<ml::ImageModel> model, std::shared_ptr<const data::ImageDataset> data,
                           std::vector<std::uint32_t> indices, const std::vector<std::uint32_t>& local_test)
    : model_(std::move(model)) {
  if (!model_) throw Error("ImageTrainer needs a model");
  use_examples(std::move(data), std::move(indices), local_test);
}

void ImageTrainer::use_examples(std::shared_ptr<const data::ImageDataset> data, std::vector<std::uint32_t> indices,
                                const std::vector<std::uint32_t>& local_test) {
  if (!data) throw Error("ImageTrainer needs a data set");
  if (indices.empty()) throw Error("ImageTrainer has no examples to train on");
  local_test_ = data::subset(*data, local_test);
  data_ = std::move(data);
  indices_ = std::move(indices);
}

FitResult ImageTrainer::fit(const model::ModelParameters& global_model, const ml::TrainingPlan& plan,
                            TrainingControl& control) {
  try {
    model_->load(ml::complete_with_personal(global_model, [&] { return model_->parameters(); },
                                            model::PersonalTensors(plan.personal)));
  } catch (const Error& e) {
    throw Error(std::string("the task's global model does not fit the model this device trains (set the client's "
                            "[model] section to the aggregator's): ") + e.what());
  }
  ml::PersonalizedFit fit = ml::fit_personalized(
      *model_, plan, [&](const ml::TrainingPlan& p) { return train_phase(p, control); }, personal_model_,
      local_test_);
  if (fit.personal_model) personal_model_ = fit.personal_model;
  FitResult result;
  result.metrics = fit.metrics;
  result.local_model = std::move(fit.local_model);
  result.personal_model = std::move(fit.personal_model);
  result.local_evaluation = fit.local_evaluation;
  return result;
}

void ImageTrainer::restore_personal_model(model::ModelParameters personal_model) {
  personal_model_ = std::move(personal_model);
}

ml::TrainMetrics ImageTrainer::train_phase(const ml::TrainingPlan& plan, TrainingControl& control) {
  ml::TrainMetrics m = model_->train(*data_, indices_, plan, [&] { return control.next_batch(); });
  if (auto reason = control.stop_reason()) throw TrainingStopped(*reason);
  return m;
}

}  // namespace sotto::client
