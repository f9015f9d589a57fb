// What a client sends the coordinator at the end of its training: the update's summary (round, examples, training
// metrics) with either the delta itself (a plain round) or its masked input (a secure round), each its own type.
#pragma once

#include <cstdint>
#include <optional>

#include "common/ml/training_plan.h"
#include "common/model/parameters.h"
#include "common/secagg/messages.h"

namespace sotto::aggregator {

struct UpdateSummary {
  std::uint64_t round_id = 0;
  std::uint64_t num_examples = 0;
  double train_loss = 0;
  double train_accuracy = 0;
  double train_seconds = 0;
  std::optional<ml::LocalEvaluation> local_evaluation;  // the device's own held-out accuracy, where it reports it
};

// A plain round's update: local minus global model.
struct ClientUpdate : UpdateSummary {
  model::ModelParameters delta;
};

// A secure round's SecAgg+ masked input: the clipped, quantized update plus masks, mod 2^bits.
struct MaskedUpload : UpdateSummary {
  secagg::MaskedInput input;
};

}  // namespace sotto::aggregator
