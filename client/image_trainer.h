// ImageTrainer: a Trainer over one of common/ml's LibTorch image models and this device's examples (indices into
// an ImageDataset). fit() loads the global model, trains per the plan and returns the local model. With personal
// tensors (plan.personal) the global model has only the federated ones: the model keeps its own personal tensors
// (from the previous round, or those the client restored, given with the global model) and returns them all.
#pragma once

#include <memory>
#include <vector>

#include "client/trainer.h"
#include "common/data/image_dataset.h"
#include "common/ml/image_model.h"

namespace sotto::client {

class ImageTrainer final : public Trainer {
 public:
  ImageTrainer(std::unique_ptr<ml::ImageModel> model, std::shared_ptr<const data::ImageDataset> data,
               std::vector<std::uint32_t> indices);
  FitResult fit(const model::ModelParameters& global_model, const ml::TrainingPlan& plan,
                TrainingControl& control) override;
  std::size_t num_examples() const { return indices_.size(); }

 private:
  // `given` (the global model, perhaps with personal tensors) completed with the model's own personal tensors.
  model::ModelParameters with_personal_tensors(const model::ModelParameters& given, const ml::TrainingPlan& plan) const;

  std::unique_ptr<ml::ImageModel> model_;
  std::shared_ptr<const data::ImageDataset> data_;
  std::vector<std::uint32_t> indices_;
};

}  // namespace sotto::client
