#include "client/c_api_callback_trainer.h"

#include "common/ml/personalized_fit.h"
#include "common/util/error.h"

namespace sotto::client {

namespace {

// The app's held-out figures, if it gave any; throws for accuracies outside [0, 1].
std::optional<ml::LocalEvaluation> held_out_measure(const sotto_fit_result& r) {
  if (r.held_out_examples == 0) return std::nullopt;
  for (double a : {r.held_out_global_accuracy, r.held_out_personal_accuracy}) {
    if (!(a >= 0 && a <= 1)) {
      throw Error("the training callback reported a held-out accuracy of " + std::to_string(a) +
                  "; accuracies are fractions in [0, 1]");
    }
  }
  return ml::LocalEvaluation{r.held_out_examples, r.held_out_global_accuracy, r.held_out_personal_accuracy};
}

}  // namespace

std::string& training_error() {
  thread_local std::string error;
  return error;
}

thread_local CallbackTrainer::TrainingHere CallbackTrainer::training_here;

FitResult CallbackTrainer::fit(const model::ModelParameters& global, const ml::TrainingPlan& plan,
                               TrainingControl& control) {
  const model::PersonalTensors personal(plan.personal);
  model::ModelParameters local = with_personal_tensors(global, personal);
  std::vector<sotto_tensor> views;
  for (auto& t : local.mutable_tensors()) {
    if (t.dtype != model::DType::kFloat32) continue;
    const auto data = t.as_mutable<float>();
    views.push_back({t.name.c_str(), data.data(), data.size(), t.shape.data(), t.shape.size()});
  }
  const sotto_training_plan p{plan.epochs,       plan.batch_size,      plan.learning_rate, plan.momentum,
                              plan.weight_decay, plan.seed,            plan.head_epochs,   plan.finetune_epochs,
                              plan.ditto_lambda, &personal,            threads_.load()};
  sotto_fit_result result{};
  training_error().clear();
  const sotto_status status = train_with(control, views, p, result);
  if (auto reason = control.stop_reason()) throw TrainingStopped(*reason);
  if (status != SOTTO_OK || result.num_examples == 0) {
    failed = true;
    throw Error(status != SOTTO_OK ? (training_error().empty() ? sotto_status_name(status) : training_error())
                                   : "the training callback reported 0 examples");
  }
  FitResult fit{std::move(local), {result.num_examples, 0, result.mean_loss, result.accuracy, 0, 0}};
  fit.local_evaluation = held_out_measure(result);
  return fit;
}

void CallbackTrainer::set_initial_model(model::ModelParameters initial) {
  std::lock_guard lock(mutex_);
  initial_ = std::move(initial);
}

bool CallbackTrainer::next_batch() {
  if (training_here.trainer == this) return training_here.control->next_batch();
  // One of the app's other threads: it borrows the control, which outlives the call (set_control waits for it), and
  // asks it without the lock held (the app's eligibility check runs inside).
  TrainingControl* control = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (!control_) return false;
    control = control_;
    ++borrowed_;
  }
  struct GiveBack {
    CallbackTrainer& trainer;
    ~GiveBack() {
      std::lock_guard lock(trainer.mutex_);
      if (--trainer.borrowed_ == 0) trainer.given_back_.notify_all();
    }
  } give_back{*this};
  return control->next_batch();
}

bool CallbackTrainer::stopping() {
  if (training_here.trainer == this) return training_here.control->stop_reason().has_value();
  std::lock_guard lock(mutex_);
  return control_ && control_->stop_reason().has_value();
}

model::ModelParameters CallbackTrainer::with_personal_tensors(const model::ModelParameters& global,
                                                              const model::PersonalTensors& personal) {
  if (personal.empty() || personal.first_personal(global)) return global;
  std::lock_guard lock(mutex_);
  if (!initial_) {
    throw Error("the plan keeps tensors on the device (personalization.personal = [" + personal.describe() +
                "]) and this device has none yet: give the app's initial model with sotto_client_set_initial_model "
                "before sotto_client_run");
  }
  return ml::complete_with_personal(global, [&] { return *initial_; }, personal);
}

sotto_status CallbackTrainer::train_with(TrainingControl& control, std::vector<sotto_tensor>& views,
                                         const sotto_training_plan& plan, sotto_fit_result& result) {
  set_control(&control);
  training_here = {this, &control};
  struct Unset {
    CallbackTrainer& trainer;
    ~Unset() {
      training_here = {};
      trainer.set_control(nullptr);
    }
  } unset{*this};
  return train_(user_, views.data(), views.size(), &plan, &result);
}

void CallbackTrainer::set_control(TrainingControl* control) {
  std::unique_lock lock(mutex_);
  given_back_.wait(lock, [&] { return borrowed_ == 0; });
  control_ = control;
}

}  // namespace sotto::client
