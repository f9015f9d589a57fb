// FedAvg (McMahan et al. 2017): the new global model is the global model plus the example-weighted mean of the
// clients' deltas, i.e. the example-weighted mean of their local models.
//
// Sums are kept in double precision per element, so the result does not depend on arrival order beyond double
// rounding; floating tensors are rounded to their own type once, at the end; integer tensors (e.g. BatchNorm's
// num_batches_tracked) take the mean delta rounded to the nearest integer.
#pragma once

#include <vector>

#include "aggregator/strategy.h"

namespace sotto::aggregator {

class FedAvg final : public Strategy {
 public:
  std::string name() const override { return "fedavg"; }
  void begin_round(const model::ModelParameters& global) override;
  void accumulate(const model::ModelParameters& delta, std::uint64_t num_examples) override;
  model::ModelParameters finish_round(const model::ModelParameters& global) override;

 private:
  std::vector<std::vector<double>> sums_;  // per tensor, per element: sum of weight * delta
  double total_weight_ = 0;
};

}  // namespace sotto::aggregator
