// Exact samplers for the discrete Gaussian and the discrete Laplace over the integers (Canonne, Kamath and Steinke,
// "The Discrete Gaussian for Differential Privacy", NeurIPS 2020, Algorithms 1-3): no floating point in the
// sampling, only integer and rational arithmetic on uniform words from crypto::RandomStream, so the released noise
// has exactly the distribution the accountant assumes (floating-point samplers leak through their rounding:
// Mironov 2012).
//
//   discrete Laplace, scale t:   P(x) ∝ exp(-|x| / t)
//   discrete Gaussian, sigma^2:  P(x) ∝ exp(-x^2 / (2 sigma^2))
//
// sigma^2 is a rational a/b; DiscreteGaussian takes sigma as a double and uses the nearest rational with
// denominator 2^16 below sigma = 16 and the nearest integer from there on (a relative change under 0.2%;
// variance_parameter() says which), for sigma in [2^-4, 2^20]. Up to sigma = 8191 every intermediate fits 64 bits
// and the sampler takes a 64-bit path; above, 128 bits. Candidates beyond 64 sigma, whose acceptance probability is
// below exp(-1984), are rejected outright.
#pragma once

#include <cstdint>

#include "common/crypto/random_stream.h"

namespace sotto::dp {

// Bernoulli(exp(-n/d)) for n >= 0, d > 0.
bool bernoulli_exp_minus(unsigned __int128 n, unsigned __int128 d, crypto::RandomStream& random);
bool bernoulli_exp_minus(std::uint64_t n, std::uint64_t d, crypto::RandomStream& random);

// Discrete Laplace with integer scale t >= 1.
std::int64_t sample_discrete_laplace(std::uint64_t t, crypto::RandomStream& random);

class DiscreteGaussian {
 public:
  // Throws sotto::Error for sigma outside [2^-4, 2^20].
  explicit DiscreteGaussian(double sigma);

  std::int64_t sample(crypto::RandomStream& random) const;
  // The sigma^2 = a/b actually sampled from.
  double variance_parameter() const { return static_cast<double>(a_) / static_cast<double>(b_); }

 private:
  std::uint64_t a_, b_;  // sigma^2 = a / b
  std::uint64_t t_;      // the Laplace scale: floor(sigma) + 1
  bool fits_64_bits_;    // every intermediate of sample() fits 64 bits
};

}  // namespace sotto::dp
