#include "common/dp/ddg_accounting.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>

#include "common/dp/discrete_gaussian.h"
#include "common/dp/rdp_accountant.h"
#include "common/util/error.h"

namespace sotto::dp {

namespace {

double log_add(double a, double b) {
  if (a == -std::numeric_limits<double>::infinity()) return b;
  if (b == -std::numeric_limits<double>::infinity()) return a;
  const double hi = std::max(a, b);
  return hi + std::log1p(std::exp(std::min(a, b) - hi));
}

double log_binomial(int n, int k) {
  return std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0);
}

// Zhu and Wang 2019, Theorem 5: the Poisson-subsampled mechanism's RDP at integer order a >= 2 from the
// mechanism's RDP eps(l) at orders 2..a.
template <typename Rdp>
double subsampled_rdp(double q, int a, Rdp&& eps) {
  const double log_q = std::log(q), log_1mq = std::log1p(-q);
  double sum = (a - 1) * log_1mq + std::log(a * q - q + 1);
  sum = log_add(sum, log_binomial(a, 2) + 2 * log_q + (a - 2) * log_1mq + eps(2));
  for (int l = 3; l <= a; ++l) {
    sum = log_add(sum, std::log(3.0) + log_binomial(a, l) + (a - l) * log_1mq + l * log_q + (l - 1) * eps(l));
  }
  return sum / (a - 1);
}

}  // namespace

double effective_local_stddev(double requested) {
  return std::sqrt(DiscreteGaussian(requested).variance_parameter());
}

double ddg_rdp(const DdgParameters& p, double order) {
  if (!(order > 1)) throw Error("DDG accounting: the order must be above 1, got " + std::to_string(order));
  const double sigma = effective_local_stddev(p.local_stddev);
  const double h = p.honest;
  const double m = static_cast<double>(p.padded);
  double tau = 0;
  for (std::uint32_t k = 1; k < p.honest; ++k) {
    tau += 10 * std::exp(-2 * std::numbers::pi * std::numbers::pi * sigma * sigma * k / (k + 1.0));
  }
  const double s2 = p.l2_bound / (std::sqrt(h) * sigma);
  const double s1 = p.l1_bound / (std::sqrt(h) * sigma);
  const double a = order / 2;
  return std::min({a * s2 * s2 + tau * m, a * (s2 * s2 + 2 * s1 * tau + tau * tau * m),
                   a * (s2 + std::sqrt(m) * tau) * (s2 + std::sqrt(m) * tau)});
}

std::vector<double> ddg_rdp(const DdgParameters& p, double q, std::span<const double> orders) {
  if (!(q > 0 && q <= 1)) throw Error("DDG accounting: the sampling rate must be in (0, 1], got " + std::to_string(q));
  std::vector<double> out;
  out.reserve(orders.size());
  for (double order : orders) {
    const double full = ddg_rdp(p, order);
    if (q == 1) {
      out.push_back(full);
    } else if (order != std::floor(order)) {
      out.push_back(std::numeric_limits<double>::infinity());
    } else {
      const int a = static_cast<int>(order);
      out.push_back(std::min(full, subsampled_rdp(q, a, [&](int l) { return ddg_rdp(p, l); })));
    }
  }
  return out;
}

double smallest_noise_multiplier(const std::function<DdgParameters(double)>& parameters_for, double q,
                                 std::uint64_t rounds, double delta, double target_epsilon,
                                 std::span<const double> spent_rdp) {
  if (rounds == 0) throw Error("DDG accounting: the rounds must be at least 1");
  if (!(target_epsilon > 0)) throw Error("DDG accounting: the target epsilon must be positive");
  const auto orders = default_orders();
  auto epsilon_at = [&](double z) {
    DdgParameters p;
    try {
      p = parameters_for(z);
    } catch (const Error&) {  // a share outside the sampler's range: not a usable multiplier
      return std::numeric_limits<double>::infinity();
    }
    auto rdp = ddg_rdp(p, q, orders);
    for (std::size_t i = 0; i < rdp.size(); ++i) {
      rdp[i] = rdp[i] * static_cast<double>(rounds) + (i < spent_rdp.size() ? spent_rdp[i] : 0.0);
    }
    return epsilon_from_rdp(orders, rdp, delta).epsilon;
  };
  double lo = 1e-3, hi = 1e4;
  if (epsilon_at(hi) > target_epsilon) {
    throw Error("DDG accounting: no noise multiplier up to 10^4 keeps " + std::to_string(rounds) +
                " rounds within epsilon " + std::to_string(target_epsilon));
  }
  if (epsilon_at(lo) <= target_epsilon) return lo;
  while (hi / lo > 1 + 1e-6) {
    const double mid = std::sqrt(lo * hi);
    (epsilon_at(mid) > target_epsilon ? lo : hi) = mid;
  }
  return hi;
}

double ddg_noise_multiplier_for(DdgSettings settings, double q, std::uint64_t rounds, double delta,
                                double target_epsilon) {
  return smallest_noise_multiplier(
      [&settings](double z) {
        settings.noise_multiplier = z;
        return choose_ddg_parameters(settings);
      },
      q, rounds, delta, target_epsilon);
}

}  // namespace sotto::dp
