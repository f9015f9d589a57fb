#include "client/image_trainer.h"

#include "common/model/personal_tensors.h"
#include "common/util/error.h"

namespace sotto::client {

ImageTrainer::ImageTrainer(std::unique_ptr<ml::ImageModel> model, std::shared_ptr<const data::ImageDataset> data,
                           std::vector<std::uint32_t> indices)
    : model_(std::move(model)), data_(std::move(data)), indices_(std::move(indices)) {
  if (!model_ || !data_) throw Error("ImageTrainer needs a model and a data set");
  if (indices_.empty()) throw Error("ImageTrainer has no examples: the shard is empty");
}

model::ModelParameters ImageTrainer::with_personal_tensors(const model::ModelParameters& given,
                                                           const ml::TrainingPlan& plan) const {
  const model::PersonalTensors personal(plan.personal);
  model::ModelParameters current = model_->parameters();
  if (personal.empty() || given.size() == current.size()) return given;
  for (const auto& t : current.tensors()) {
    if (!given.find(t.name) && !personal.is_personal(t.name)) {
      throw Error("tensor '" + t.name + "' of the model is missing from the " + std::to_string(given.size()) +
                  " given tensors, and the plan does not make it personal (personalization.personal = [" +
                  personal.describe() + "])");
    }
  }
  return model::with_tensors(std::move(current), given);
}

FitResult ImageTrainer::fit(const model::ModelParameters& global_model, const ml::TrainingPlan& plan,
                            TrainingControl& control) {
  try {
    model_->load(with_personal_tensors(global_model, plan));
  } catch (const Error& e) {
    throw Error(std::string("the task's global model does not fit the model this device trains (set the client's "
                            "[model] section to the aggregator's): ") + e.what());
  }
  FitResult result;
  result.metrics = model_->train(*data_, indices_, plan, [&] { return control.next_batch(); });
  if (auto reason = control.stop_reason()) throw TrainingStopped(*reason);
  result.local_model = model_->parameters();
  return result;
}

}  // namespace sotto::client
