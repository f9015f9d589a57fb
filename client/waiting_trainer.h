// WaitingTrainer: a test mode for measuring the aggregator, not the device (`sotto-client --simulate-training
// SECONDS`). It trains nothing: fit() waits the given time, checking the training control as a real trainer does
// between batches, and returns the global model unchanged, as one example. Hundreds of such clients on a small
// machine then load the daemon with their connections, handshakes and uploads rather than the CPU with training,
// and never load LibTorch.
#pragma once

#include <chrono>

#include "client/trainer.h"

namespace sotto::client {

class WaitingTrainer : public Trainer {
 public:
  explicit WaitingTrainer(std::chrono::milliseconds wait) : wait_(wait) {}
  FitResult fit(const model::ModelParameters& global_model, const ml::TrainingPlan& plan,
                TrainingControl& control) override;

 private:
  std::chrono::milliseconds wait_;
};

}  // namespace sotto::client
