// DeferredTrainer: a Trainer built only once the device has a place in a round.
//
// An app whose trainer is costly to set up wraps its factory in one (sotto-client's loads LibTorch and the data:
// ~0.5 s of CPU and ~160 MiB). The client then checks in without it; the app calls prepare() when the aggregator
// admits it (ClientEventKind::kAdmitted), which builds the trainer on a background thread while the cohort fills;
// fit() waits for it, or builds it if prepare() was never called. If the factory throws, every fit() throws that
// error. A device that is never admitted never builds it.
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <mutex>

#include "client/trainer.h"

namespace sotto::client {

class DeferredTrainer final : public Trainer {
 public:
  using Factory = std::function<std::shared_ptr<Trainer>()>;
  explicit DeferredTrainer(Factory factory);
  ~DeferredTrainer() override;  // waits for a build under way

  // Starts building the trainer on a background thread, once; returns at once.
  void prepare();
  // Whether the trainer has been built (successfully or not).
  bool built() const;
  FitResult fit(const model::ModelParameters& global_model, const ml::TrainingPlan& plan,
                TrainingControl& control) override;
  void restore_personal_model(model::ModelParameters personal_model) override;
  bool holds_personal_model() const override;   // false until built
  void forget_personal_model() override;        // nothing to forget until built

 private:
  std::shared_future<std::shared_ptr<Trainer>> started();

  Factory factory_;
  mutable std::mutex mutex_;
  std::shared_future<std::shared_ptr<Trainer>> trainer_;
};

}  // namespace sotto::client
