#include "aggregator/fedavg.h"

namespace sotto::aggregator {

void FedAvg::begin_round(const model::ModelParameters& global) {
  mean_.reset(global);
}

void FedAvg::accumulate(const model::ModelParameters& delta, std::uint64_t num_examples) {
  mean_.add(delta, num_examples);
}

model::ModelParameters FedAvg::finish_round(const model::ModelParameters& global) {
  return mean_.apply_to(global);
}

}  // namespace sotto::aggregator
