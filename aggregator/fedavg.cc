#include "aggregator/fedavg.h"

namespace sotto::aggregator {

void FedAvg::begin_round(const model::ModelParameters& global) {
  mean_.reset(global);
}

void FedAvg::accumulate(model::ModelParameters delta, std::uint64_t num_examples) {
  mean_.add(std::move(delta), num_examples);
}

void FedAvg::accumulate_sole(model::ModelParameters delta, std::uint64_t num_examples) {
  mean_.add_sole(std::move(delta), num_examples);
}

model::ModelParameters FedAvg::finish_round(const model::ModelParameters& global) {
  model::ModelParameters next = mean_.apply_to(global);
  mean_.release();
  return next;
}

}  // namespace sotto::aggregator
