// TrainingPlan: how a client trains in a round — epochs, batch size, optimizer and its settings, seed, and the
// FedProx proximal weight.
//
// The aggregator sends it with the task (sotto.v1.TrainingPlan on the wire); trainers read it here, free of
// protobuf and LibTorch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include <string_view>

#include "common/model/parameters.h"

namespace sotto::ml {

struct TrainingPlan {
  std::uint32_t epochs = 1;
  std::uint32_t batch_size = 32;
  std::string optimizer = "sgd";  // "sgd" (with momentum) or "adam"
  double learning_rate = 0.05;
  double momentum = 0.9;
  double weight_decay = 0.0;
  std::uint64_t seed = 0;  // shuffling seed for this round and client
  // FedProx (Li et al., MLSys 2020): μ in the proximal term (μ/2)·||w − w_global||² added to the local loss, where
  // w_global is the model at the start of train(). 0 = plain local training (FedAvg). Must be finite and >= 0.
  double proximal_mu = 0.0;
  // The round's L2 bound on the update (privacy.clip_norm): the participant clips to it before sending. 0 = none
  // (a plain round without clipping). Must be finite and >= 0.
  double clip_norm = 0.0;
  // personalization.personal: glob patterns naming the tensors that stay on the device (model/personal_tensors.h).
  // The global model the task carries has none of them; the device trains them with the rest and keeps them.
  std::vector<std::string> personal;
  // Local adaptation (personalization.*), each producing the device's personal model, the one the app uses, never
  // sent. finetune_epochs: after training, fine-tune a copy of the global model (with the personal tensors) on the
  // device's data. ditto_lambda (Ditto, Li et al. ICML 2021): after training, train the personal model v from its
  // last value for `epochs` with (lambda/2)·||v − w_global||² added to the loss. At most one of the two.
  std::uint32_t finetune_epochs = 0;
  double ditto_lambda = 0.0;
  // FedRep (Collins et al. ICML 2021): first train the personal tensors alone (the rest frozen) for this many
  // epochs, then the federated ones alone (the personal frozen) for `epochs`, and send those. Needs `personal`.
  std::uint32_t head_epochs = 0;
  // Whether the device makes a personal model of its own this round (fine-tuning or Ditto).
  bool adapts() const { return finetune_epochs > 0 || ditto_lambda > 0; }

  // Set by the device for one train() call, never sent:
  // tensors left as they are (glob patterns): FedRep trains the personal head with the body frozen, then the body
  // with the head frozen.
  std::vector<std::string> frozen;
  // What the proximal term pulls toward: Ditto's personal model trains toward the global model. Null: the model as
  // train() starts (FedProx).
  std::shared_ptr<const model::ModelParameters> proximal_anchor;
};

// The seed a client trains with in a round: the plan's round seed mixed with the client's id (FNV-1a), so every
// client shuffles differently and the simulator reproduces exactly what a real client does.
inline std::uint64_t client_training_seed(std::uint64_t round_seed, std::string_view client_id) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : client_id) h = (h ^ ch) * 1099511628211ull;
  return round_seed ^ h;
}

struct TrainMetrics {
  std::uint64_t num_examples = 0;  // examples seen per epoch (the FedAvg weight)
  std::uint64_t steps = 0;
  double mean_loss = 0.0;  // over the last epoch
  double accuracy = 0.0;   // over the last epoch
  double seconds = 0.0;          // the whole call
  double compute_seconds = 0.0;  // of which LibTorch's forward, backward and optimizer steps (for benchmarks)
};

// A device's own measure of personalization: on the held-out part of its own data (evaluation.local_fraction), the
// accuracy of the global model it received (with its personal tensors) and of its personal model (the adapted one,
// or else the model it trained this round).
struct LocalEvaluation {
  std::uint64_t examples = 0;
  double global_accuracy = 0.0;
  double personal_accuracy = 0.0;
};

struct EvalMetrics {
  std::uint64_t num_examples = 0;
  double loss = 0.0;
  double accuracy = 0.0;
};

// One evaluation batch's sums. Evaluation is the in-order sum of its batches (ml::combine_batches), so batches
// evaluated on several threads combine to exactly the result of one thread.
struct EvalBatch {
  std::uint64_t num_examples = 0;
  double loss_sum = 0.0;  // summed cross-entropy
  std::int64_t correct = 0;
};

inline EvalMetrics combine_batches(const std::vector<EvalBatch>& batches) {
  EvalMetrics m;
  double loss_sum = 0;
  std::int64_t correct = 0;
  for (const auto& b : batches) {
    m.num_examples += b.num_examples;
    loss_sum += b.loss_sum;
    correct += b.correct;
  }
  if (m.num_examples == 0) return m;
  m.loss = loss_sum / static_cast<double>(m.num_examples);
  m.accuracy = static_cast<double>(correct) / static_cast<double>(m.num_examples);
  return m;
}

}  // namespace sotto::ml
