#include "client/deferred_trainer.h"

#include <chrono>

#include "common/util/error.h"

namespace sotto::client {

DeferredTrainer::DeferredTrainer(Factory factory) : factory_(std::move(factory)) {
  if (!factory_) throw Error("DeferredTrainer needs a factory");
}

DeferredTrainer::~DeferredTrainer() {
  const std::lock_guard lock(mutex_);
  if (trainer_.valid()) trainer_.wait();
}

std::shared_future<std::shared_ptr<Trainer>> DeferredTrainer::started() {
  const std::lock_guard lock(mutex_);
  if (!trainer_.valid()) {
    trainer_ = std::async(std::launch::async, [factory = factory_]() -> std::shared_ptr<Trainer> {
                 auto trainer = factory();
                 if (!trainer) throw Error("the trainer factory returned no trainer");
                 return trainer;
               }).share();
  }
  return trainer_;
}

void DeferredTrainer::prepare() { started(); }

bool DeferredTrainer::built() const {
  const std::lock_guard lock(mutex_);
  return trainer_.valid() && trainer_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

void DeferredTrainer::restore_personal_model(model::ModelParameters personal_model) {
  started().get()->restore_personal_model(std::move(personal_model));
}

bool DeferredTrainer::holds_personal_model() const {
  std::lock_guard lock(mutex_);
  if (!trainer_.valid() || trainer_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
  try {
    return trainer_.get()->holds_personal_model();
  } catch (const std::exception&) {
    return false;  // the build failed: fit() says why
  }
}

void DeferredTrainer::forget_personal_model() {
  std::shared_future<std::shared_ptr<Trainer>> trainer;
  {
    std::lock_guard lock(mutex_);
    trainer = trainer_;
  }
  if (!trainer.valid()) return;
  try {
    trainer.get()->forget_personal_model();
  } catch (const std::exception&) {
    // the build failed: there is nothing in it to forget
  }
}

FitResult DeferredTrainer::fit(const model::ModelParameters& global_model, const ml::TrainingPlan& plan,
                               TrainingControl& control) {
  return started().get()->fit(global_model, plan, control);
}

}  // namespace sotto::client
