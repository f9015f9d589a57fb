#include "common/dp/ddg_parameters.h"

#include <algorithm>
#include <string>

#include "common/dp/randomized_rotation.h"
#include "common/util/error.h"

namespace sotto::dp {

namespace {

void check(const DdgSettings& s) {
  auto fail = [](const std::string& what) { throw Error("distributed discrete Gaussian: " + what); };
  if (s.bits < 2 || s.bits > 32) fail("bits must be in 2..32, got " + std::to_string(s.bits));
  if (!(s.clip_norm > 0) || !std::isfinite(s.clip_norm)) fail("the clip norm must be positive and finite");
  if (!(s.noise_multiplier > 0) || !std::isfinite(s.noise_multiplier)) {
    fail("the noise multiplier must be positive and finite");
  }
  if (s.clients < 1 || s.honest < 1 || s.honest > s.clients) {
    fail("the honest clients (" + std::to_string(s.honest) + ") must be between 1 and the clients summed (" +
         std::to_string(s.clients) + ")");
  }
  if (s.dimension < 1) fail("the dimension must be at least 1");
  if (!(s.beta >= 0 && s.beta < 1)) fail("beta must be in [0, 1)");
  if (!(s.stddevs_in_range > 0)) fail("the standard deviations kept in range must be positive");
  const double range_squared = std::ldexp(1.0, 2 * static_cast<int>(s.bits));
  if (range_squared <= s.clients * s.stddevs_in_range * s.stddevs_in_range) {
    fail(std::to_string(s.clients) + " clients do not fit in " + std::to_string(s.bits) +
         " bits with " + std::to_string(s.stddevs_in_range) + " standard deviations of room: use more bits");
  }
}

}  // namespace

double inflated_l2_bound(double x, double m, double beta) {
  const double plain = x + std::sqrt(m);
  if (beta <= 0) return plain;
  const double conditional = std::sqrt(x * x + m / 4 + std::sqrt(2 * std::log(1 / beta)) * (x + std::sqrt(m) / 2));
  return std::min(plain, conditional);
}

DdgParameters choose_ddg_parameters(const DdgSettings& s) {
  check(s);
  DdgParameters p;
  p.bits = s.bits;
  p.dimension = s.dimension;
  p.padded = padded_dimension(static_cast<std::size_t>(s.dimension));
  p.clip_norm = s.clip_norm;
  p.noise_multiplier = s.noise_multiplier;
  p.honest = s.honest;
  const double m = static_cast<double>(p.padded);
  const double n = s.clients;
  const double k = s.stddevs_in_range;
  const double range_squared = std::ldexp(1.0, 2 * static_cast<int>(s.bits));
  // sigma_u = z·D2/(scale·sqrt(h)) = z·C·inflation/sqrt(h), inflation = D2/(C·scale) >= 1, found by iteration.
  double inflation = 1;
  for (int iteration = 0; iteration < 50; ++iteration) {
    const double sigma_u = s.noise_multiplier * s.clip_norm * inflation / std::sqrt(static_cast<double>(s.honest));
    double scale = std::sqrt(range_squared - n * k * k) /
                   (2 * k * std::sqrt(s.clip_norm * s.clip_norm * n * n / m + n * sigma_u * sigma_u));
    scale = std::min(scale, kMaxLocalStddev / (sigma_u * 1.01));
    const double l2 = inflated_l2_bound(s.clip_norm * scale, m, s.beta);
    const double next = l2 / (s.clip_norm * scale);
    p.scale = scale;
    p.l2_bound = l2;
    if (std::abs(next - inflation) < 1e-12 * inflation) break;
    inflation = next;
  }
  p.l1_bound = p.l2_bound * std::min(std::sqrt(m), p.l2_bound);
  p.local_stddev = s.noise_multiplier * p.l2_bound / std::sqrt(static_cast<double>(s.honest));
  if (p.local_stddev < kMinLocalStddev) {
    throw Error("distributed discrete Gaussian: each client's noise share (" + std::to_string(p.local_stddev) +
                " in scaled units) is below the exact sampler's 1/16: use more bits or a larger noise multiplier");
  }
  p.local_stddev = std::min(p.local_stddev, kMaxLocalStddev);
  return p;
}

}  // namespace sotto::dp
