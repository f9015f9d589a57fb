#include "common/secagg/parameters.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "common/secagg/messages.h"
#include "common/util/error.h"

namespace sotto::secagg {

namespace {

constexpr double kMinusInf = -std::numeric_limits<double>::infinity();

double log_choose(std::uint32_t a, std::uint32_t b) {
  return std::lgamma(a + 1.0) - std::lgamma(b + 1.0) - std::lgamma(static_cast<double>(a) - b + 1.0);
}

// log2 of sum over h in [lo, hi] of P[H = h]; -inf if the range holds no possible value.
double log2_hypergeometric_range(std::uint32_t population, std::uint32_t successes, std::uint32_t draws,
                                 std::int64_t lo, std::int64_t hi) {
  if (successes > population || draws > population) {
    throw Error("secagg: a hypergeometric distribution needs successes and draws <= population");
  }
  const std::int64_t support_lo =
      std::max<std::int64_t>(0, static_cast<std::int64_t>(draws) + successes - static_cast<std::int64_t>(population));
  const std::int64_t support_hi = std::min<std::int64_t>(draws, successes);
  lo = std::max(lo, support_lo);
  hi = std::min(hi, support_hi);
  if (lo > hi) return kMinusInf;
  const double log_total = log_choose(population, draws);
  std::vector<double> terms;
  terms.reserve(static_cast<std::size_t>(hi - lo + 1));
  double peak = kMinusInf;
  for (std::int64_t h = lo; h <= hi; ++h) {
    const auto x = static_cast<std::uint32_t>(h);
    const double term = log_choose(successes, x) + log_choose(population - successes, draws - x) - log_total;
    terms.push_back(term);
    peak = std::max(peak, term);
  }
  double sum = 0;
  for (double term : terms) sum += std::exp(term - peak);
  return std::min(0.0, (peak + std::log(sum)) / std::log(2.0));
}

void check_cohort(std::uint32_t n) {
  if (n < kMinClients) {
    throw Error("secagg: secure aggregation needs a cohort of at least " + std::to_string(kMinClients) +
                " clients, got n = " + std::to_string(n));
  }
}

void check_rate(double rate, const char* name) {
  if (!(rate >= 0 && rate < 1)) {
    throw Error(std::string("secagg: the ") + name + " rate must be in [0, 1), got " + std::to_string(rate));
  }
}

// The number of clients a rate stands for, rounded down (the complete-graph rule's hard requirement).
std::uint32_t count_of(std::uint32_t n, double rate) {
  return std::min<std::uint32_t>(n - 1, static_cast<std::uint32_t>(std::floor(rate * n)));
}

// Rounded up, for the finder's bounds: a 10% dropout rate in a cohort of 5 must still plan for one dropout.
std::uint32_t planned_count_of(std::uint32_t n, double rate) {
  return std::min<std::uint32_t>(n - 1, static_cast<std::uint32_t>(std::ceil(rate * n)));
}

}  // namespace

double log2_hypergeometric_at_least(std::uint32_t population, std::uint32_t successes, std::uint32_t draws,
                                    std::uint32_t x) {
  return log2_hypergeometric_range(population, successes, draws, x, std::numeric_limits<std::int64_t>::max());
}

double log2_hypergeometric_below(std::uint32_t population, std::uint32_t successes, std::uint32_t draws,
                                 std::uint32_t x) {
  return log2_hypergeometric_range(population, successes, draws, 0, static_cast<std::int64_t>(x) - 1);
}

SecAggParameters find_parameters(std::uint32_t n, double dropout_rate, double corruption_rate, double sigma,
                                 double eta) {
  check_cohort(n);
  check_rate(dropout_rate, "dropout");
  check_rate(corruption_rate, "corruption");
  if (!(sigma >= 0) || !(eta >= 0) || !std::isfinite(sigma) || !std::isfinite(eta)) {
    throw Error("secagg: the security and correctness parameters (sigma, eta) must be finite and >= 0");
  }
  const std::uint32_t others = n - 1;
  const std::uint32_t dropped = planned_count_of(n, dropout_rate);
  const std::uint32_t corrupt = planned_count_of(n, corruption_rate);
  const double log2_n = std::log2(static_cast<double>(n));
  const double security_bound = -sigma - log2_n;
  const double correctness_bound = -eta - log2_n;

  auto try_degree = [&](std::uint32_t k) -> std::optional<SecAggParameters> {
    // The smallest t that is secure; correctness only gets harder as t grows.
    for (std::uint32_t t = std::max<std::uint32_t>(2, k / 2 + 1); t <= k; ++t) {
      const double security = log2_hypergeometric_at_least(others, corrupt, k, t);
      if (security > security_bound) continue;
      const double correctness = log2_hypergeometric_below(others, others - dropped, k, t);
      if (correctness > correctness_bound) return std::nullopt;
      return SecAggParameters{k, t, correctness, security};
    }
    return std::nullopt;
  };
  for (std::uint32_t k = 2; k + 2 <= n; k += 2) {
    if (auto found = try_degree(k)) return *found;
  }
  if (auto found = try_degree(n - 1)) return *found;
  throw Error("secagg: no neighbour degree meets the bounds for n = " + std::to_string(n) +
              " clients with dropout rate " + std::to_string(dropout_rate) + " and corruption rate " +
              std::to_string(corruption_rate) + " (sigma = " + std::to_string(sigma) +
              ", eta = " + std::to_string(eta) + "); lower the rates or grow the cohort");
}

SecAggParameters complete_graph_parameters(std::uint32_t n, double dropout_rate) {
  check_cohort(n);
  check_rate(dropout_rate, "dropout");
  const std::uint32_t k = n - 1;
  const std::uint32_t t = std::max<std::uint32_t>(2, k / 2 + 1);
  const std::uint32_t surviving = k - count_of(n, dropout_rate);
  if (surviving < t) {
    throw Error("secagg: with n = " + std::to_string(n) + " and dropout rate " + std::to_string(dropout_rate) +
                " only " + std::to_string(surviving) + " neighbours are sure to survive, below the threshold t = " +
                std::to_string(t) + " (t must exceed k/2 = " + std::to_string(k / 2.0) + ")");
  }
  return SecAggParameters{k, t, kMinusInf, 0.0};
}

}  // namespace sotto::secagg
