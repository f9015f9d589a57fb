// WeightedMeanDelta: the example-weighted mean of the clients' deltas, accumulated one update at a time.
//
// This is the one place where client updates are summed. FedAvg applies the mean as it is (global + mean);
// the server optimizers (server_optimizer.h) use it as the pseudo-gradient of Reddi et al. 2021. Sums are kept in
// double precision per element, so the result does not depend on arrival order beyond double rounding. Supported
// dtypes: float32, float64, int64, int32, uint8, int8; any other dtype is refused with the tensor named.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/model/parameters.h"

namespace sotto::aggregator {

class WeightedMeanDelta {
 public:
  // `owner` names the strategy in error messages ("FedAvg", "FedAdam").
  explicit WeightedMeanDelta(std::string owner) : owner_(std::move(owner)) {}

  // Forgets any partial sum and prepares for deltas shaped like `like`.
  void reset(const model::ModelParameters& like);
  // Adds weight * delta, weight = num_examples. The layout must match the one given to reset().
  void add(const model::ModelParameters& delta, std::uint64_t num_examples);

  double total_weight() const { return total_weight_; }
  // Throws sotto::Error unless some update with a positive example count was added.
  void require_updates() const;
  // Throws sotto::Error unless `global` has the layout (tensor count, element counts) given to reset().
  void check_layout(const model::ModelParameters& global) const;
  // Mean delta of element `element` of tensor `tensor`, in double. Requires require_updates() to pass.
  double mean(std::size_t tensor, std::size_t element) const { return sums_[tensor][element] / total_weight_; }

  // out = global + mean for tensor `tensor` (the FedAvg rule): floating tensors are computed in double and rounded
  // to their own type once; integer tensors (e.g. BatchNorm's num_batches_tracked) add the mean delta rounded to
  // the nearest integer. `out` has the layout of `global`.
  void apply_mean(std::size_t tensor, const model::Tensor& global, model::Tensor& out) const;
  // global + mean for every tensor.
  model::ModelParameters apply_to(const model::ModelParameters& global) const;

 private:
  std::string owner_;
  std::vector<std::vector<double>> sums_;  // per tensor, per element: sum of weight * delta
  double total_weight_ = 0;
};

}  // namespace sotto::aggregator
