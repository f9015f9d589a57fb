#include "simulations/canaries.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

#include "common/crypto/random_stream.h"
#include "common/secagg/update_vector.h"
#include "common/util/error.h"
#include "common/util/seed_mix.h"

namespace sotto::sim {

namespace {

std::array<std::uint8_t, 32> direction_seed(const CanaryOptions& options, std::uint64_t k) {
  std::array<std::uint8_t, 32> seed{};
  for (int w = 0; w < 4; ++w) {
    std::uint64_t v = util::mix64(options.seed ^ util::mix64(k * 4 + static_cast<std::uint64_t>(w) + 0x63616eull));
    for (int b = 0; b < 8; ++b) seed[w * 8 + b] = static_cast<std::uint8_t>(v >> (8 * b));
  }
  return seed;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double stddev_of(const std::vector<double>& v, double mean) {
  double s = 0;
  for (double x : v) s += (x - mean) * (x - mean);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

double log_normal_pdf(double x, double mean, double sd) {
  const double z = (x - mean) / sd;
  return -0.5 * z * z - std::log(sd) - 0.5 * std::log(2 * std::numbers::pi);
}

// delta(epsilon) of P against Q: the integral of max(0, p - e^epsilon q), by the trapezoid rule.
double hockey_stick(double mean_p, double sd_p, double mean_q, double sd_q, double epsilon) {
  const double spread = 14 * std::max(sd_p, sd_q);
  const double lo = std::min(mean_p, mean_q) - spread, hi = std::max(mean_p, mean_q) + spread;
  constexpr int kSteps = 40'000;
  const double h = (hi - lo) / kSteps;
  double sum = 0;
  for (int i = 0; i <= kSteps; ++i) {
    const double x = lo + h * i;
    const double log_p = log_normal_pdf(x, mean_p, sd_p);
    const double excess = -std::expm1(epsilon + log_normal_pdf(x, mean_q, sd_q) - log_p);
    if (excess > 0) sum += (i == 0 || i == kSteps ? 0.5 : 1.0) * std::exp(log_p) * excess;
  }
  return sum * h;
}

}  // namespace

std::vector<float> canary_direction(const CanaryOptions& options, std::uint64_t k, std::size_t dimension) {
  const auto seed = direction_seed(options, k);
  crypto::RandomStream stream(seed);
  const auto unit = static_cast<float>(1 / std::sqrt(static_cast<double>(dimension)));
  std::vector<float> u(dimension);
  for (float& v : u) v = stream.coin() ? unit : -unit;
  return u;
}

model::ModelParameters canary_update(const CanaryOptions& options, std::uint64_t k, double clip_norm,
                                     const model::ModelParameters& like) {
  auto u = canary_direction(options, k, secagg::floating_length(like));
  std::vector<double> scaled(u.begin(), u.end());
  for (double& v : scaled) v *= clip_norm;
  return secagg::unflatten_floating(scaled, like);
}

CanaryCosines canary_cosines(const CanaryOptions& options, const model::ModelParameters& initial,
                             const model::ModelParameters& final_model) {
  const auto a = secagg::flatten_floating(initial), b = secagg::flatten_floating(final_model);
  std::vector<double> change(a.size());
  double norm = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    change[i] = static_cast<double>(b[i]) - a[i];
    norm += change[i] * change[i];
  }
  norm = std::sqrt(norm);
  CanaryCosines out;
  for (std::uint64_t k = 0; k < options.count + options.held_out; ++k) {
    const auto u = canary_direction(options, k, a.size());
    double dot = 0;
    for (std::size_t i = 0; i < u.size(); ++i) dot += change[i] * u[i];
    (k < options.count ? out.inserted : out.held_out).push_back(norm > 0 ? dot / norm : 0.0);
  }
  return out;
}

double gaussian_pair_epsilon(double mean_a, double sd_a, double mean_b, double sd_b, double delta) {
  if (!(sd_a > 0) || !(sd_b > 0)) throw Error("canaries: the fitted standard deviations must be positive");
  auto delta_at = [&](double e) {
    return std::max(hockey_stick(mean_a, sd_a, mean_b, sd_b, e), hockey_stick(mean_b, sd_b, mean_a, sd_a, e));
  };
  if (delta_at(0) <= delta) return 0;
  double lo = 0, hi = 1;
  while (delta_at(hi) > delta && hi < 1e3) hi *= 2;
  for (int i = 0; i < 50; ++i) {
    const double mid = (lo + hi) / 2;
    (delta_at(mid) > delta ? lo : hi) = mid;
  }
  return hi;
}

CanaryEstimate estimate_epsilon(const CanaryCosines& cosines, double delta) {
  if (cosines.inserted.size() < 2 || cosines.held_out.size() < 2) {
    throw Error("canaries: an estimate needs at least 2 inserted and 2 held-out canaries");
  }
  CanaryEstimate e;
  e.delta = delta;
  e.inserted_mean = mean_of(cosines.inserted);
  e.inserted_stddev = stddev_of(cosines.inserted, e.inserted_mean);
  e.held_out_mean = mean_of(cosines.held_out);
  e.held_out_stddev = stddev_of(cosines.held_out, e.held_out_mean);
  // One pooled standard deviation for both: a Gaussian mechanism shifts the mean and leaves the spread, and two
  // spreads fitted apart differ by sampling error alone, which at small delta would pass for a large epsilon.
  const double pooled = std::sqrt((e.inserted_stddev * e.inserted_stddev * (cosines.inserted.size() - 1) +
                                   e.held_out_stddev * e.held_out_stddev * (cosines.held_out.size() - 1)) /
                                  static_cast<double>(cosines.inserted.size() + cosines.held_out.size() - 2));
  e.epsilon = gaussian_pair_epsilon(e.inserted_mean, pooled, e.held_out_mean, pooled, delta);
  return e;
}

}  // namespace sotto::sim
