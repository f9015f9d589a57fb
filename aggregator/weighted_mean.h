// WeightedMeanDelta: the example-weighted mean of the clients' deltas, accumulated one update at a time.
//
// This is the one place where client updates are summed. FedAvg applies the mean as it is (global + mean);
// the server optimizers (server_optimizer.h) use it as the pseudo-gradient of Reddi et al. 2021. Sums are kept in
// double precision per element, so the result does not depend on arrival order beyond double rounding. Supported
// dtypes: float32, float64, int64, int32, uint8, int8; any other dtype is refused with the tensor named.
//
// Memory: the double sums cost twice the model. A round's sole update (a secure round's survivors' mean) is therefore
// kept as it came, one model's size, and no sums are made; the result is the same to the bit (0 + w·x is what the
// sums would hold).
#pragma once

#include <cstdint>
#include <optional>
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
  void add(model::ModelParameters delta, std::uint64_t num_examples);
  // The same for the round's only update, which is kept as it came rather than summed (when its dtypes are the
  // layout's and nothing was added before it).
  void add_sole(model::ModelParameters delta, std::uint64_t num_examples);
  // Makes the double sums from a sole update kept as it came; mean() needs them.
  void materialize();

  double total_weight() const { return total_weight_; }
  // Throws sotto::Error unless some update with a positive example count was added.
  void require_updates() const;
  // Throws sotto::Error unless `global` has the layout (tensor count, element counts) given to reset().
  void check_layout(const model::ModelParameters& global) const;
  // Mean delta of element `element` of tensor `tensor`, in double. Requires require_updates() to pass and the sums
  // made (materialize()).
  double mean(std::size_t tensor, std::size_t element) const { return sums_[tensor][element] / total_weight_; }

  // out = global + mean for tensor `tensor` (the FedAvg rule): floating tensors are computed in double and rounded
  // to their own type once; integer tensors (e.g. BatchNorm's num_batches_tracked) add the mean delta rounded to
  // the nearest integer. `out` has the layout of `global`.
  void apply_mean(std::size_t tensor, const model::Tensor& global, model::Tensor& out) const;
  // global + mean for every tensor.
  model::ModelParameters apply_to(const model::ModelParameters& global) const;
  // Frees the sums (twice the model's size in doubles) once the round's mean is applied, so that they do not sit
  // beside the checkpoint and the next model; reset() makes them again.
  void release();

 private:
  // Throws unless `delta` has the layout given to reset().
  void check_update_layout(const model::ModelParameters& delta) const;
  // Whether `delta`'s dtypes are the layout's, so that it can stand for the sums (see above).
  bool same_dtypes(const model::ModelParameters& delta) const;
  void add_to_sums(const model::ModelParameters& delta, double weight);

  std::string owner_;
  std::vector<std::size_t> elements_;      // the layout: per tensor, its element count
  std::vector<model::DType> dtypes_;       // and its dtype
  std::optional<model::ModelParameters> first_;  // add_sole's update, kept as it came; sums_ then empty
  std::vector<std::vector<double>> sums_;  // per tensor, per element: sum of weight * delta
  double total_weight_ = 0;
};

}  // namespace sotto::aggregator
