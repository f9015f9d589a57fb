// ImageTrainer: a Trainer over one of common/ml's LibTorch image models and this device's examples (indices into
// an ImageDataset). fit() loads the global model, trains per the plan (ml/personalized_fit.h) and returns the local
// model. With personal
// tensors (plan.personal) the global model has only the federated ones: the model keeps its own personal tensors
// (from the previous round, or those the client restored, given with the global model) and returns them all.
// With held-out examples it also reports the global model's accuracy on them against the personal model's.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "client/trainer.h"
#include "common/data/image_dataset.h"
#include "common/ml/image_model.h"

namespace sotto::client {

class ImageTrainer final : public Trainer {
 public:
  // `local_test`: examples of `data` held out from training (evaluation.local_fraction), on which fit() measures the
  // global model against the personal one.
  ImageTrainer(std::unique_ptr<ml::ImageModel> model, std::shared_ptr<const data::ImageDataset> data,
               std::vector<std::uint32_t> indices, const std::vector<std::uint32_t>& local_test = {});
  FitResult fit(const model::ModelParameters& global_model, const ml::TrainingPlan& plan,
                TrainingControl& control) override;
  void restore_personal_model(model::ModelParameters personal_model) override;
  bool holds_personal_model() const override { return personal_model_.has_value(); }
  void forget_personal_model() override { personal_model_.reset(); }
  std::size_t num_examples() const { return indices_.size(); }
  // Replaces the examples for the rounds from here on (an app whose data changes between rounds).
  void use_examples(std::shared_ptr<const data::ImageDataset> data, std::vector<std::uint32_t> indices,
                    const std::vector<std::uint32_t>& local_test = {});

 private:
  ml::TrainMetrics train_phase(const ml::TrainingPlan& plan, TrainingControl& control);

  std::unique_ptr<ml::ImageModel> model_;
  std::shared_ptr<const data::ImageDataset> data_;
  std::vector<std::uint32_t> indices_;
  data::ImageDataset local_test_;  // the held-out examples, copied
  std::optional<model::ModelParameters> personal_model_;  // Ditto's v, from the last round or restored
};

}  // namespace sotto::client
