// FedAvg (McMahan et al. 2017): the new global model is the global model plus the example-weighted mean of the
// clients' deltas, i.e. the example-weighted mean of their local models.
//
// The mean is WeightedMeanDelta's (weighted_mean.h): sums in double precision per element, so the result does not
// depend on arrival order beyond double rounding; floating tensors are rounded to their own type once, at the end;
// integer tensors (e.g. BatchNorm's num_batches_tracked) take the mean delta rounded to the nearest integer.
// FedProx (Li et al. 2020) aggregates the same way — its proximal term lives in the clients' training — so the
// strategy factory builds a FedAvg named "fedprox" for it.
#pragma once

#include <string>

#include "aggregator/strategy.h"
#include "aggregator/weighted_mean.h"

namespace sotto::aggregator {

class FedAvg final : public Strategy {
 public:
  // `name` is what name() reports: "fedavg", or "fedprox" when it is FedProx's server side.
  explicit FedAvg(std::string name = "fedavg") : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void begin_round(const model::ModelParameters& global) override;
  void accumulate(model::ModelParameters delta, std::uint64_t num_examples) override;
  void accumulate_sole(model::ModelParameters delta, std::uint64_t num_examples) override;
  model::ModelParameters finish_round(const model::ModelParameters& global) override;

 private:
  std::string name_;
  WeightedMeanDelta mean_{"FedAvg"};
};

}  // namespace sotto::aggregator
