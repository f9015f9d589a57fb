#include "common/dp/discrete_gaussian.h"

#include <cmath>
#include <string>

#include "common/util/error.h"

namespace sotto::dp {

namespace {

using u128 = unsigned __int128;

// Bernoulli(n/d), 0 <= n <= d: certain outcomes draw nothing, a half takes one bit, anything else one word.
template <typename U>
bool bernoulli(U n, U d, crypto::RandomStream& random) {
  if (n == 0) return false;
  if (n >= d) return true;
  if (2 * n == d) return random.coin();
  return random.below(d) < n;
}

// Bernoulli(exp(-n/d)) for 0 <= n/d <= 1: K = 1, 2, ... while Bernoulli(gamma/K) succeeds; K odd wins.
template <typename U>
bool bernoulli_exp_minus_at_most_one(U n, U d, crypto::RandomStream& random) {
  U k = 1;
  while (bernoulli<U>(n, d * k, random)) ++k;
  return (k & 1) == 1;
}

// exp(-n/d) = exp(-1)^floor(n/d) · exp(-(n mod d)/d): every factor must succeed.
template <typename U>
bool bernoulli_exp_minus_any(U n, U d, crypto::RandomStream& random) {
  if (d == 0) throw Error("bernoulli_exp_minus: the denominator must be positive");
  for (U whole = n / d; whole > 0; --whole) {
    if (!bernoulli_exp_minus_at_most_one<std::uint64_t>(1, 1, random)) return false;
  }
  return bernoulli_exp_minus_at_most_one<U>(n % d, d, random);
}

}  // namespace

bool bernoulli_exp_minus(u128 n, u128 d, crypto::RandomStream& random) {
  return bernoulli_exp_minus_any<u128>(n, d, random);
}

bool bernoulli_exp_minus(std::uint64_t n, std::uint64_t d, crypto::RandomStream& random) {
  return bernoulli_exp_minus_any<std::uint64_t>(n, d, random);
}

std::int64_t sample_discrete_laplace(std::uint64_t t, crypto::RandomStream& random) {
  if (t == 0) throw Error("the discrete Laplace scale must be at least 1");
  for (;;) {
    const std::uint64_t u = random.below(t);
    if (!bernoulli_exp_minus(u, t, random)) continue;
    std::uint64_t v = 0;
    while (bernoulli_exp_minus(std::uint64_t{1}, std::uint64_t{1}, random)) ++v;
    const std::uint64_t magnitude = u + t * v;  // geometric with parameter 1 - exp(-1/t)
    const bool negative = random.coin();
    if (negative && magnitude == 0) continue;  // zero would be counted twice
    return negative ? -static_cast<std::int64_t>(magnitude) : static_cast<std::int64_t>(magnitude);
  }
}

DiscreteGaussian::DiscreteGaussian(double sigma) {
  if (!(sigma >= 0x1p-4 && sigma <= 0x1p20)) {
    throw Error("the discrete Gaussian's sigma must be in [1/16, 2^20], got " + std::to_string(sigma));
  }
  b_ = sigma < 16 ? std::uint64_t{1} << 16 : 1;
  a_ = static_cast<std::uint64_t>(std::llround(sigma * sigma * static_cast<double>(b_)));
  t_ = static_cast<std::uint64_t>(std::floor(sigma)) + 1;
  // diff <= 64 t^2 b (see sample) and the denominator 2 a b t^2 must fit: below sigma = 16, t <= 16 and b = 2^16
  // give diff^2 < 2^61; from 16 on, b = 1 and t <= 8192 give diff^2 <= 2^12 t^4 <= 2^64 - 1 (and a smaller
  // denominator).
  fits_64_bits_ = t_ <= 8191;
}

// CKS Algorithm 3: a discrete Laplace Y with scale t, accepted with probability
// exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2)) = exp(-(|Y| t b - a)^2 / (2 a b t^2)).
std::int64_t DiscreteGaussian::sample(crypto::RandomStream& random) const {
  for (;;) {
    const std::int64_t y = sample_discrete_laplace(t_, random);
    const u128 magnitude = static_cast<u128>(y < 0 ? -y : y);
    // Beyond 64 t (>= 64 sigma) the acceptance below is under exp(-1984), and its square would overflow: reject.
    if (magnitude > u128{64} * t_) continue;
    const u128 scaled = magnitude * t_ * b_;
    const u128 diff = scaled > a_ ? scaled - a_ : a_ - scaled;
    const u128 n = diff * diff, d = u128{2} * a_ * b_ * t_ * t_;
    const bool accept = fits_64_bits_ ? bernoulli_exp_minus(static_cast<std::uint64_t>(n), static_cast<std::uint64_t>(d), random)
                                      : bernoulli_exp_minus(n, d, random);
    if (accept) return y;
  }
}

}  // namespace sotto::dp
