#include "common/dp/rdp_accountant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "common/util/error.h"

namespace sotto::dp {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double log_add(double a, double b) {
  if (a == -kInf) return b;
  if (b == -kInf) return a;
  const double hi = std::max(a, b), lo = std::min(a, b);
  return hi + std::log1p(std::exp(lo - hi));
}

// log |binomial(n, k)| for real n.
double log_binomial(double n, double k) {
  return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1);
}

// Whether binomial(alpha, i) < 0 for a non-integer alpha > 0: the product alpha (alpha - 1) ... (alpha - i + 1) has
// i - 1 - floor(alpha) negative factors once i exceeds floor(alpha) + 1.
bool binomial_negative(double alpha, int i) {
  const int negative_factors = i - 1 - static_cast<int>(std::floor(alpha));
  return negative_factors > 0 && negative_factors % 2 == 1;
}

// A sum of signed terms in log space: the logs of its positive and of its negative parts.
struct SignedLogSum {
  double positive = -kInf, negative = -kInf;
  void add(double log_term, bool is_negative) {
    (is_negative ? negative : positive) = log_add(is_negative ? negative : positive, log_term);
  }
  // log(positive - negative); the positive part dominates in these series.
  double value() const {
    if (negative == -kInf) return positive;
    return positive + std::log1p(-std::exp(negative - positive));
  }
};

// log erfc(x), accurate where erfc underflows (the asymptotic series at infinity).
double log_erfc(double x) {
  if (x < 25) return std::log(std::erfc(x));
  const double x2 = x * x;
  return -std::log(M_PI) / 2 - std::log(x) - x2 - 0.5 / x2 + 0.625 / (x2 * x2) - 37.0 / 24.0 / (x2 * x2 * x2) +
         353.0 / 64.0 / (x2 * x2 * x2 * x2);
}

double log_a_integer(double q, double sigma, std::uint64_t alpha) {
  double log_a = -kInf;
  const double log_q = std::log(q), log_1mq = std::log1p(-q);
  for (std::uint64_t k = 0; k <= alpha; ++k) {
    const double kd = static_cast<double>(k);
    const double term = log_binomial(static_cast<double>(alpha), kd) + kd * log_q +
                        static_cast<double>(alpha - k) * log_1mq + (kd * kd - kd) / (2 * sigma * sigma);
    log_a = log_add(log_a, term);
  }
  return log_a;
}

// Mironov, Talwar and Zhang 2019, Sec. 3.3: the integrals over (-inf, z0] and [z0, inf) as two series, each term
// with the sign of its binomial coefficient (negative ones alternate beyond floor(alpha) + 1).
double log_a_fractional(double q, double sigma, double alpha) {
  constexpr int kMaxTerms = 1'000'000;
  const double z0 = sigma * sigma * std::log(1 / q - 1) + 0.5;
  const double log_q = std::log(q), log_1mq = std::log1p(-q);
  SignedLogSum a0, a1;
  double last_s0 = -kInf, last_s1 = -kInf;
  for (int i = 0; i < kMaxTerms; ++i) {
    const double id = i, j = alpha - id;
    const double log_coef = log_binomial(alpha, id);
    const bool negative = binomial_negative(alpha, i);
    const double log_e0 = std::log(0.5) + log_erfc((id - z0) / (std::sqrt(2.0) * sigma));
    const double log_e1 = std::log(0.5) + log_erfc((z0 - j) / (std::sqrt(2.0) * sigma));
    const double log_s0 = log_coef + id * log_q + j * log_1mq + (id * id - id) / (2 * sigma * sigma) + log_e0;
    const double log_s1 = log_coef + j * log_q + id * log_1mq + (j * j - j) / (2 * sigma * sigma) + log_e1;
    a0.add(log_s0, negative);
    a1.add(log_s1, negative);
    const double total = log_add(a0.value(), a1.value());
    if (log_s0 < last_s0 && log_s1 < last_s1 && std::max(log_s0, log_s1) < total - 30) return total;
    last_s0 = log_s0;
    last_s1 = log_s1;
  }
  return kInf;  // did not converge: this order is left out (an infinite RDP never gives the minimum)
}

void check_rate_and_noise(double q, double sigma) {
  if (!(q > 0 && q <= 1)) throw Error("the sampling rate must be in (0, 1], got " + std::to_string(q));
  if (!(sigma > 0) || !std::isfinite(sigma)) {
    throw Error("the noise multiplier must be a positive number, got " + std::to_string(sigma));
  }
}

void check_delta(double delta) {
  if (!(delta > 0 && delta < 1)) throw Error("delta must be in (0, 1), got " + std::to_string(delta));
}

}  // namespace

std::vector<double> default_orders() {
  std::vector<double> orders;
  for (int i = 11; i <= 109; ++i) orders.push_back(i / 10.0);
  for (int i = 11; i <= 63; ++i) orders.push_back(i);
  for (double o : {128.0, 256.0, 512.0, 1024.0}) orders.push_back(o);
  return orders;
}

double subsampled_gaussian_rdp(double q, double sigma, double order) {
  check_rate_and_noise(q, sigma);
  if (!(order > 1)) throw Error("a Rényi order must be above 1, got " + std::to_string(order));
  if (q == 1) return order / (2 * sigma * sigma);
  const bool integer = order == std::floor(order) && order < 1e6;
  const double log_a = integer ? log_a_integer(q, sigma, static_cast<std::uint64_t>(order))
                               : log_a_fractional(q, sigma, order);
  return log_a / (order - 1);
}

Epsilon epsilon_from_rdp(std::span<const double> orders, std::span<const double> rdp, double delta) {
  check_delta(delta);
  if (orders.size() != rdp.size() || orders.empty()) {
    throw Error("epsilon_from_rdp needs one RDP value per order");
  }
  Epsilon best{kInf, 0};
  for (std::size_t i = 0; i < orders.size(); ++i) {
    const double a = orders[i], r = rdp[i];
    double epsilon = kInf;
    if (r <= 0 || delta * delta + std::expm1(-r) > 0) {
      epsilon = 0;  // the KL bound: delta >= sqrt(1 - exp(-rdp)) already
    } else if (a > 1.01) {
      epsilon = r + std::log1p(-1 / a) - std::log(delta * a) / (a - 1);
    }
    if (epsilon < best.epsilon) best = {epsilon, a};
  }
  best.epsilon = std::max(0.0, best.epsilon);
  return best;
}

RdpAccountant::RdpAccountant(std::vector<double> orders) : orders_(std::move(orders)), rdp_(orders_.size(), 0.0) {
  if (orders_.empty()) throw Error("an RDP accountant needs at least one order");
}

void RdpAccountant::compose(double q, double sigma, std::uint64_t steps) {
  for (std::size_t i = 0; i < orders_.size(); ++i) {
    rdp_[i] += static_cast<double>(steps) * subsampled_gaussian_rdp(q, sigma, orders_[i]);
  }
}

Epsilon RdpAccountant::epsilon(double delta) const {
  return epsilon_from_rdp(orders_, rdp_, delta);
}

Epsilon subsampled_gaussian_epsilon(double q, double sigma, std::uint64_t steps, double delta) {
  if (steps == 0) throw Error("the number of steps must be at least 1");
  RdpAccountant accountant;
  accountant.compose(q, sigma, steps);
  return accountant.epsilon(delta);
}

double noise_multiplier_for(double q, std::uint64_t steps, double delta, double target_epsilon) {
  if (!(target_epsilon > 0) || !std::isfinite(target_epsilon)) {
    throw Error("the target epsilon must be a positive number, got " + std::to_string(target_epsilon));
  }
  check_rate_and_noise(q, 1.0);
  auto epsilon = [&](double sigma) { return subsampled_gaussian_epsilon(q, sigma, steps, delta).epsilon; };
  double lo = 0, hi = 1;
  while (epsilon(hi) > target_epsilon) {
    lo = hi;
    hi *= 2;
    if (hi > 1e7) throw Error("no noise multiplier up to 1e7 reaches epsilon " + std::to_string(target_epsilon));
  }
  while (hi - lo > 1e-6 * hi) {
    const double mid = (lo + hi) / 2;
    (epsilon(mid) > target_epsilon ? lo : hi) = mid;
  }
  return hi;
}

}  // namespace sotto::dp
