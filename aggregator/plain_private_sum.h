// PlainPrivateSum: a plain round's updates summed under differential privacy, without secure aggregation.
//
//   central  the aggregator is trusted: it rounds each arriving (clipped) update onto the Distributed Discrete
//            Gaussian's integer grid (rotation, scale, conditional rounding: dp/ddg_encoding.h), sums exactly in
//            64-bit integers (no modulus, and the order of arrival does not matter), and adds the whole discrete
//            Gaussian noise once, when the round's mean is taken — no floating-point sampler ever draws released
//            noise (Mironov 2012).
//   local    each device noised its own update with the whole noise and sent it decoded (dp::ddg_noised_update);
//            the aggregator only adds them up.
// Under DP every update has the same weight and the mean's denominator is fixed before the round (the cohort, or
// the expected one), so no one's example count moves the mean. With adaptive clipping (central only) each update
// comes with its clipped-count coordinate (dp/adaptive_clipping.h), summed and noised with it and read apart.
#pragma once

#include <cstdint>
#include <vector>

#include "common/crypto/random_stream.h"
#include "common/model/parameters.h"
#include "common/round/messages.h"

namespace sotto::aggregator {

class PlainPrivateSum {
 public:
  // `noise`: a central or local plan (dp::DdgParameters of the round's charge); throws std::logic_error otherwise.
  explicit PlainPrivateSum(round::DistributedNoise noise);

  // One accepted update (in central mode already clipped to the plan's norm), and under adaptive clipping its
  // clipped-count coordinate.
  void add(const model::ModelParameters& delta, float clipped_count_entry = 0);
  std::size_t count() const { return count_; }
  // The sum over `denominator`, noise included (drawn here in central mode), in the layout of `like`.
  model::ModelParameters mean(double denominator, const model::ModelParameters& like);
  // Under adaptive clipping, after mean(): the noised sum of the clipped-count coordinates.
  double clipped_count_sum() const { return clipped_count_sum_; }

 private:
  round::DistributedNoise noise_;
  std::vector<std::int64_t> grid_sum_;  // central
  std::vector<double> float_sum_;       // local
  std::size_t count_ = 0;
  bool counted_ = false;  // adaptive clipping: the last coordinate is the clipped count
  double clipped_count_sum_ = 0;
  crypto::RandomStream random_;  // central: rounding coins and the noise, keyed by OpenSSL's RAND_bytes
};

}  // namespace sotto::aggregator
