// CallbackTrainer: the C API's sotto_train_fn as a client::Trainer. The global model's float32 tensors are handed
// to the app's callback in place, and the run's TrainingControl is reachable from the callback
// (sotto_client_next_batch) while it runs, without a lock held: the app's eligibility check, asked from
// next_batch(), may call back into the library. Internal to libsotto_client.so.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "client/trainer.h"
#include "common/model/personal_tensors.h"
#include "sotto/sotto_client.h"

namespace sotto::client {

// The reason the app's callback gave with sotto_set_training_error, on this thread.
std::string& training_error();

class CallbackTrainer final : public Trainer {
 public:
  CallbackTrainer(sotto_train_fn train, void* user) : train_(train), user_(user) {}

  FitResult fit(const model::ModelParameters& global, const ml::TrainingPlan& plan,
                TrainingControl& control) override;
  void set_initial_model(model::ModelParameters initial);
  void set_threads(int threads) { threads_ = static_cast<std::uint32_t>(threads); }

  // For the callback, on its own thread or another of the app's while it runs: the running control's answer; false
  // when no training runs.
  bool next_batch();
  // From any thread.
  bool stopping();

  std::atomic<bool> failed{false};  // the latest fit() failed in the app's callback

 private:
  // The round's model: `global` with the device's personal tensors — those kept from its last round (the round
  // driver adds them), or on its first such round the app's initial ones.
  model::ModelParameters with_personal_tensors(const model::ModelParameters& global,
                                               const model::PersonalTensors& personal);
  // The app's callback, with the run's control reachable from it: through training_here on this thread (no lock,
  // as fit() is on the stack), through control_ under the lock from others.
  sotto_status train_with(TrainingControl& control, std::vector<sotto_tensor>& views, const sotto_training_plan& plan,
                          sotto_fit_result& result);
  void set_control(TrainingControl* control);

  struct TrainingHere {
    const CallbackTrainer* trainer = nullptr;
    TrainingControl* control = nullptr;
  };
  static thread_local TrainingHere training_here;  // the training run on this thread, if any

  sotto_train_fn train_;
  void* user_;
  std::atomic<std::uint32_t> threads_{0};
  std::mutex mutex_;
  TrainingControl* control_ = nullptr;             // for other threads, under mutex_
  int borrowed_ = 0;                               // other threads' next_batch() calls under way, under mutex_
  std::condition_variable given_back_;
  std::optional<model::ModelParameters> initial_;  // sotto_client_set_initial_model's
};

}  // namespace sotto::client
