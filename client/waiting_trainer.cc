#include "client/waiting_trainer.h"

#include <algorithm>
#include <thread>

namespace sotto::client {

FitResult WaitingTrainer::fit(const model::ModelParameters& global_model, const ml::TrainingPlan&,
                              TrainingControl& control) {
  constexpr std::chrono::milliseconds kSlice{20};  // as often as a real trainer's batches would ask
  const auto until = std::chrono::steady_clock::now() + wait_;
  for (;;) {
    if (!control.next_batch()) throw TrainingStopped(control.stop_reason().value_or("training stopped"));
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) break;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(kSlice, until - now));
  }
  return {global_model, ml::TrainMetrics{1, 0, 0, 0, 0, 0}};
}

}  // namespace sotto::client
