#include "client/app_data_trainer.h"

#include <numeric>

#include "common/data/partition.h"
#include "common/ml/torch_runtime.h"
#include "common/util/error.h"

namespace sotto::client {

namespace {

// `model` with the tensors of `personal` in place of its own of the same names.
model::ModelParameters with_tensors_of(model::ModelParameters model, const model::ModelParameters& personal) {
  for (auto& t : model.mutable_tensors()) {
    if (const model::Tensor* own = personal.find(t.name)) t = *own;
  }
  return model;
}

}  // namespace

AppDataTrainer::AppDataTrainer(Options options, ExampleReader read_examples)
    : options_(std::move(options)), read_examples_(std::move(read_examples)) {
  if (!read_examples_) throw Error("AppDataTrainer needs the app's example reader");
}

std::unique_ptr<ml::ImageModel> AppDataTrainer::new_model() const {
  const ml::TorchRuntime& torch = ml::TorchRuntime::get();  // loads LibTorch the first time
  torch.set_torch_threads(options_.threads);
  return torch.make_model(options_.model, 0);
}

ImageTrainer& AppDataTrainer::trainer_for(std::shared_ptr<const data::ImageDataset> examples) {
  std::vector<std::uint32_t> all(examples->size());
  std::iota(all.begin(), all.end(), 0u);
  const data::HeldOut split = data::hold_out(all, options_.local_fraction, options_.held_out_seed);
  if (trainer_) {
    trainer_->use_examples(std::move(examples), split.train, split.test);
    return *trainer_;
  }
  trainer_ = std::make_unique<ImageTrainer>(new_model(), std::move(examples), split.train, split.test);
  if (restored_) trainer_->restore_personal_model(std::move(*restored_));
  restored_.reset();
  return *trainer_;
}

FitResult AppDataTrainer::fit(const model::ModelParameters& global_model, const ml::TrainingPlan& plan,
                              TrainingControl& control) {
  try {
    auto examples = std::make_shared<data::ImageDataset>(read_examples_());
    if (examples->size() == 0) {  // not yet: this round is left, and the device comes back for the next
      control.stop("the app has no examples to train on yet");
      throw TrainingStopped(*control.stop_reason());
    }
    FitResult result = trainer_for(std::move(examples)).fit(global_model, plan, control);
    const std::lock_guard lock(predict_mutex_);
    last_trained_ = result.local_model;
    ++trained_version_;
    return result;
  } catch (const TrainingStopped&) {
    throw;
  } catch (const std::exception&) {
    if (!control.stop_reason()) failed = true;
    throw;
  }
}

void AppDataTrainer::restore_personal_model(model::ModelParameters personal_model) {
  if (trainer_) {
    trainer_->restore_personal_model(std::move(personal_model));
  } else {
    restored_ = std::move(personal_model);
  }
}

bool AppDataTrainer::holds_personal_model() const {
  return trainer_ ? trainer_->holds_personal_model() : restored_.has_value();
}

void AppDataTrainer::forget_personal_model() {
  if (trainer_) trainer_->forget_personal_model();
  restored_.reset();
  forget_trained_model();
}

std::vector<float> AppDataTrainer::predict(const data::ImageDataset& images, std::uint64_t state_generation,
                                           const std::function<PersonState()>& person_state) {
  const std::lock_guard lock(predict_mutex_);
  if (!inference_model_) {
    inference_model_ = new_model();
    initial_ = inference_model_->parameters();
  }
  // The model is loaded again only when what it is made of changed (a round, an opt-out); without a store the
  // generation stays 0 and it is loaded every time.
  const std::pair<std::uint64_t, std::uint64_t> made_of{state_generation, trained_version_};
  if (state_generation == 0 || made_of != loaded_from_) {
    const PersonState state = person_state();
    if (state.personal_model.size() > 0) {
      inference_model_->load(state.personal_model);
    } else if (last_trained_) {
      inference_model_->load(*last_trained_);
    } else {
      inference_model_->load(with_tensors_of(initial_, state.personal_tensors));
    }
    loaded_from_ = made_of;
  }
  return inference_model_->logits(images);
}

void AppDataTrainer::forget_trained_model() {
  const std::lock_guard lock(predict_mutex_);
  last_trained_.reset();
  ++trained_version_;
}

}  // namespace sotto::client
