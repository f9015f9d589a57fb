// AppDataTrainer: the library trains the model itself, on examples the app hands over each round. For an app that
// has a model file (model.torchscript, as models/export_model.py writes it, or a built-in model.architecture) and
// its own examples, but no training code: the C API's sotto_client_create_model_trainer.
//
// LibTorch comes from libsotto_torch_runtime.so (common/ml/torch_runtime.h), loaded at the first round's training,
// never before. Each fit() reads the app's examples afresh through its reader (in memory, for that round only; never
// written to files), holds out evaluation.local_fraction of them by the device's own seed, and trains as
// sotto-client does (ImageTrainer: personal tensors, fine-tuning, Ditto, the held-out measures). predict() runs the
// person's model on the app's images.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "client/image_trainer.h"
#include "client/trainer.h"
#include "common/data/image_dataset.h"
#include "common/ml/model_spec.h"

namespace sotto::client {

class AppDataTrainer final : public Trainer {
 public:
  // The app's examples for a round (28x28 greyscale images and their labels); throws sotto::Error when it cannot.
  using ExampleReader = std::function<data::ImageDataset()>;
  struct Options {
    ml::ModelSpec model;
    int threads = 1;             // LibTorch's, for training and prediction
    double local_fraction = 0;   // held out from training to measure the models
    std::uint64_t held_out_seed = 0;
  };

  AppDataTrainer(Options options, ExampleReader read_examples);
  FitResult fit(const model::ModelParameters& global_model, const ml::TrainingPlan& plan,
                TrainingControl& control) override;
  void restore_personal_model(model::ModelParameters personal_model) override;
  bool holds_personal_model() const override;
  // Also forgets the latest trained model, which holds the person's personal tensors.
  void forget_personal_model() override;
  // LibTorch's threads, from the next load of the model on (before the first round to count for training).
  void set_threads(int threads) { options_.threads = threads; }

  // What the device keeps for the person (Client::personal_model, personal_tensors).
  struct PersonState {
    model::ModelParameters personal_model;
    model::ModelParameters personal_tensors;
  };
  // The logits (`images.size()` rows) of the person's model: its personal model when there is one (local
  // adaptation's, the model the person uses), else the model this device trained in its latest round here, else
  // the model's initial weights with the personal tensors the device kept — so after a restart, until its next
  // round, the initial body with its own head. `person_state` is read when the state's generation moved since the
  // last call (every call at generation 0: no store). Thread-safe; loads LibTorch if need be.
  std::vector<float> predict(const data::ImageDataset& images, std::uint64_t state_generation,
                             const std::function<PersonState()>& person_state);
  // Forgets the latest trained model now (an opt-out: it holds the person's personal tensors). Thread-safe.
  void forget_trained_model();

  // Set when a fit() failed for a reason other than being stopped (the app's examples, LibTorch, the model).
  std::atomic<bool> failed{false};

 private:
  // The config's model with its initial weights, LibTorch's threads set.
  std::unique_ptr<ml::ImageModel> new_model() const;
  // The trainer (built at the first round) with the round's examples, less those held out.
  ImageTrainer& trainer_for(std::shared_ptr<const data::ImageDataset> examples);

  Options options_;
  ExampleReader read_examples_;
  std::unique_ptr<ImageTrainer> trainer_;                  // the training thread's
  std::optional<model::ModelParameters> restored_;         // a personal model given before the trainer was built
  std::mutex predict_mutex_;                               // for those below
  std::optional<model::ModelParameters> last_trained_;     // the latest round's local model
  std::uint64_t trained_version_ = 0;                      // counts changes of last_trained_
  std::unique_ptr<ml::ImageModel> inference_model_;
  std::pair<std::uint64_t, std::uint64_t> loaded_from_{~0ull, ~0ull};  // (generation, version) it was loaded at
  model::ModelParameters initial_;                         // the model's initial weights
};

}  // namespace sotto::client
