// Private analytics: the discrete Gaussian on a secure sum of bounded integer vectors (a histogram, a count vector).
// Each client's contribution is bounded — |x_i| <= linf for every entry and sum_i |x_i| <= l1, the bounds the plan
// states — and the device refuses a contribution over them rather than clipping it silently. Replacing one
// contribution by zero then moves the sum by at most
//   L1 sensitivity  D1 = min(l1, d·linf)
//   L2 sensitivity  D2 = sqrt(k·linf^2 + r^2), with D1 = k·linf + r, 0 <= r < linf (the largest L2 norm within both)
// so the Distributed Discrete Gaussian's accounting (ddg_accounting.h) applies with scale 1, no rotation (padded =
// d) and no rounding: each of the h honest clients adds N_Z(0, sigma^2) with sigma = z·D2/sqrt(h), and the sum is
// published as signed values mod 2^bits. The bits must hold n contributions and the noise with `stddevs_in_range`
// standard deviations to spare, or the parameters are refused.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "common/dp/ddg_parameters.h"

namespace sotto::dp {

struct ContributionBound {
  std::uint64_t linf = 0;  // the largest |entry|; 0: none
  std::uint64_t l1 = 0;    // the largest sum of |entries|; 0: none
  bool bounded() const { return linf > 0 || l1 > 0; }
};

// The devices' accuracy histograms (ml/accuracy_histogram.h): two one-hot vectors, one 1 in each, so D1 = 2 and
// D2 = sqrt(2). Under distributed DP they are this mechanism's contributions, noised and charged beside the update.
inline constexpr ContributionBound kOneHotPairBound{1, 2};

struct IntegerSumSettings {
  ContributionBound bound;
  std::uint64_t dimension = 1;   // d: the contribution's length
  double noise_multiplier = 1;   // z > 0, against D2
  std::uint32_t clients = 1;     // n: the most contributions in the sum
  std::uint32_t honest = 1;      // h <= n: the fewest honest shares that must carry the noise
  std::uint32_t bits = 32;       // the secure sum's modulus 2^bits
  double stddevs_in_range = kDefaultStddevsInRange;
};

// D1 and D2 above (the bound must be bounded()).
double l1_sensitivity(const ContributionBound& bound, std::uint64_t dimension);
double l2_sensitivity(const ContributionBound& bound, std::uint64_t dimension);

// Why this contribution (words read as signed 32-bit values) is over the bound, naming the entry; nullopt if within.
std::optional<std::string> bound_violation(std::span<const std::uint32_t> contribution, const ContributionBound& bound);

// The mechanism's parameters (scale 1, padded = dimension, clip_norm = l2_bound = D2, l1_bound = D1). Throws
// sotto::Error naming what cannot work: no bound, z not positive, h outside 1..n, a noise share outside the
// sampler's range, or a sum that does not fit the bits.
DdgParameters choose_integer_sum_parameters(const IntegerSumSettings& settings);
// The same for the devices' accuracy histograms: kOneHotPairBound over 2·bins words.
DdgParameters choose_accuracy_histogram_parameters(std::uint32_t bins, double noise_multiplier, std::uint32_t clients,
                                                   std::uint32_t honest, std::uint32_t bits,
                                                   double stddevs_in_range = kDefaultStddevsInRange);

}  // namespace sotto::dp
