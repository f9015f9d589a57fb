#include "client/image_trainer.h"

#include "common/util/error.h"

namespace sotto::client {

ImageTrainer::ImageTrainer(std::unique_ptr<ml::ImageModel> model, std::shared_ptr<const data::ImageDataset> data,
                           std::vector<std::uint32_t> indices)
    : model_(std::move(model)), data_(std::move(data)), indices_(std::move(indices)) {
  if (!model_ || !data_) throw Error("ImageTrainer needs a model and a data set");
  if (indices_.empty()) throw Error("ImageTrainer has no examples: the shard is empty");
}

FitResult ImageTrainer::fit(const model::ModelParameters& global_model, const ml::TrainingPlan& plan,
                            TrainingControl& control) {
  try {
    model_->load(global_model);
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
