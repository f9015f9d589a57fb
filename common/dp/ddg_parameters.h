// The Distributed Discrete Gaussian mechanism's parameters (Kairouz, Liu, Steinke, ICML 2021): from what the
// operator chooses — bits per coordinate, clip norm, noise multiplier, how many clients are summed and how many of
// them are honest at least — to what every client applies and the accountant charges: the scale (1/gamma), the
// L2 bound that conditional rounding keeps (which is also the mechanism's L2 sensitivity, in scaled units), the L1
// bound, and each client's share of the noise.
//
// Choices (facts from the paper's Section 5 and its public research code; code our own):
//   padded dimension m = the next power of two >= d (the randomized Hadamard rotation);
//   rounding bound  D2 = min(x + sqrt(m), sqrt(x^2 + m/4 + sqrt(2 ln(1/beta)) (x + sqrt(m)/2))), x = C·scale;
//   L1 bound        D1 = D2 · min(sqrt(m), D2)  (an integer vector's L1 norm is at most its squared L2 norm);
//   noise           the honest clients' shares together have standard deviation z·D2: each of the h honest
//                   clients adds N_Z(0, sigma^2) with sigma = z·D2/sqrt(h) (scaled units);
//   scale           the largest that keeps the sum of n clients within 2^bits with k standard deviations to spare:
//                   2^bits = 2k·sqrt(C^2 n^2 / m + n (1/(4 scale^2) + sigma_u^2)) · scale, sigma_u = sigma/scale,
//                   solved with D2 (which depends on the scale) by fixed-point iteration; capped so that sigma
//                   stays within the exact sampler's range (<= 2^20).
// Adjacency: one user's contribution replaced by zero (its device still adds its noise share), so the L2
// sensitivity is D2.
#pragma once

#include <cmath>
#include <cstdint>

namespace sotto::dp {

inline const double kDefaultRoundingBeta = std::exp(-0.5);
inline constexpr double kDefaultStddevsInRange = 4;
// The range of a noise share the exact sampler (discrete_gaussian.h) takes, in scaled units.
inline constexpr double kMinLocalStddev = 1.0 / 16;
inline constexpr double kMaxLocalStddev = 1 << 20;

struct DdgSettings {
  std::uint32_t bits = 16;        // 2..32: the modulus is 2^bits
  double clip_norm = 1;           // C, in the update's units
  double noise_multiplier = 1;    // z > 0
  std::uint32_t clients = 1;      // n: the most inputs in the sum (the cohort)
  std::uint32_t honest = 1;       // h <= n: the fewest honest survivors whose shares must carry the noise
  std::uint64_t dimension = 1;    // d: the update's length
  double beta = kDefaultRoundingBeta;  // conditional rounding's failure probability parameter, in [0, 1)
  double stddevs_in_range = kDefaultStddevsInRange;  // k
};

struct DdgParameters {
  std::uint32_t bits = 0;
  std::uint64_t dimension = 0;
  std::uint64_t padded = 0;       // m
  double clip_norm = 0;           // C
  double noise_multiplier = 0;    // z
  std::uint32_t honest = 0;       // h
  double scale = 0;               // 1/gamma: an update coordinate u becomes u·scale before rounding
  double l2_bound = 0;            // D2, scaled
  double l1_bound = 0;            // D1, scaled
  double local_stddev = 0;        // sigma, scaled: each client's noise share
};

// D2 for a scaled clip norm x and padded dimension m.
double inflated_l2_bound(double scaled_clip, double padded, double beta);

// Throws sotto::Error naming the setting that cannot work (bits outside 2..32, C or z not positive, h outside
// 1..n, too many clients for the bits: 4^bits <= n k^2, a noise share below the sampler's range).
DdgParameters choose_ddg_parameters(const DdgSettings& settings);

}  // namespace sotto::dp
