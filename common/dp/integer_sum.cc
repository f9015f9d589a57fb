#include "common/dp/integer_sum.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "common/util/error.h"
#include "common/util/short_number.h"

namespace sotto::dp {

namespace {

// The bound's effective L-infinity and L1 parts over d entries.
std::pair<double, double> effective(const ContributionBound& b, std::uint64_t dimension) {
  if (!b.bounded()) throw Error("private secure sum: the contribution has no bound (set an L-infinity or L1 bound)");
  const double d = static_cast<double>(dimension);
  double linf = b.linf > 0 ? static_cast<double>(b.linf) : static_cast<double>(b.l1);
  double l1 = b.l1 > 0 ? static_cast<double>(b.l1) : linf * d;
  l1 = std::min(l1, linf * d);
  linf = std::min(linf, l1);
  return {linf, l1};
}

}  // namespace

double l1_sensitivity(const ContributionBound& bound, std::uint64_t dimension) {
  return effective(bound, dimension).second;
}

double l2_sensitivity(const ContributionBound& bound, std::uint64_t dimension) {
  const auto [linf, l1] = effective(bound, dimension);
  const double full = std::floor(l1 / linf);
  const double rest = l1 - full * linf;
  return std::sqrt(full * linf * linf + rest * rest);
}

std::optional<std::string> bound_violation(std::span<const std::uint32_t> contribution,
                                           const ContributionBound& bound) {
  std::uint64_t l1 = 0;
  for (std::size_t i = 0; i < contribution.size(); ++i) {
    const auto value = static_cast<std::int32_t>(contribution[i]);
    const std::uint64_t magnitude = static_cast<std::uint64_t>(std::llabs(value));
    if (bound.linf > 0 && magnitude > bound.linf) {
      return "entry " + std::to_string(i) + " is " + std::to_string(value) + ", over the plan's L-infinity bound " +
             std::to_string(bound.linf);
    }
    l1 += magnitude;
  }
  if (bound.l1 > 0 && l1 > bound.l1) {
    return "its entries' absolute values add up to " + std::to_string(l1) + ", over the plan's L1 bound " +
           std::to_string(bound.l1);
  }
  return std::nullopt;
}

DdgParameters choose_integer_sum_parameters(const IntegerSumSettings& s) {
  auto fail = [](const std::string& what) { throw Error("private secure sum: " + what); };
  if (s.bits < 2 || s.bits > 32) fail("bits must be in 2..32, got " + std::to_string(s.bits));
  if (!(s.noise_multiplier > 0) || !std::isfinite(s.noise_multiplier)) fail("the noise multiplier must be positive");
  if (s.clients < 1 || s.honest < 1 || s.honest > s.clients) {
    fail("the honest clients (" + std::to_string(s.honest) + ") must be between 1 and the clients summed (" +
         std::to_string(s.clients) + ")");
  }
  if (s.dimension < 1) fail("the dimension must be at least 1");
  DdgParameters p;
  p.bits = s.bits;
  p.dimension = p.padded = s.dimension;
  p.scale = 1;
  p.noise_multiplier = s.noise_multiplier;
  p.honest = s.honest;
  p.l2_bound = p.clip_norm = l2_sensitivity(s.bound, s.dimension);
  p.l1_bound = l1_sensitivity(s.bound, s.dimension);
  p.local_stddev = s.noise_multiplier * p.l2_bound / std::sqrt(static_cast<double>(s.honest));
  if (p.local_stddev < kMinLocalStddev || p.local_stddev > kMaxLocalStddev) {
    fail("each client's noise share (standard deviation " + util::short_number(p.local_stddev) +
         ") is outside the exact sampler's range [1/16, 2^20]: change the noise multiplier or the bound");
  }
  // Every one of the n summed contributions may carry a share: the published values must stay in range.
  const double n = s.clients;
  const double reach = n * effective(s.bound, s.dimension).first + s.stddevs_in_range * std::sqrt(n) * p.local_stddev;
  if (reach >= std::ldexp(1.0, static_cast<int>(s.bits) - 1)) {
    fail(std::to_string(s.clients) + " contributions and their noise (up to " + util::short_number(reach) +
         " per entry) do not fit in " + std::to_string(s.bits) + " signed bits: use more bits or a smaller bound");
  }
  return p;
}

DdgParameters choose_accuracy_histogram_parameters(std::uint32_t bins, double noise_multiplier, std::uint32_t clients,
                                                   std::uint32_t honest, std::uint32_t bits, double stddevs_in_range) {
  return choose_integer_sum_parameters(
      {kOneHotPairBound, 2ull * bins, noise_multiplier, clients, honest, bits, stddevs_in_range});
}

}  // namespace sotto::dp
