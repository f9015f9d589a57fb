#include "common/secagg/parameters.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "common/util/error.h"

using sotto::secagg::complete_graph_parameters;
using sotto::secagg::find_parameters;

namespace {

// P[H >= x] (or P[H < x]) for H ~ Hypergeometric(N, K, k), by the pmf recurrence in long double: independent of
// the lgamma code under test.
long double hypergeometric_tail(std::uint32_t N, std::uint32_t K, std::uint32_t k, std::uint32_t x, bool upper) {
  const std::int64_t lo = std::max<std::int64_t>(0, std::int64_t{k} + K - N);
  const std::int64_t hi = std::min<std::int64_t>(k, K);
  // log pmf(lo) via sums of logs, then the ratio pmf(h+1)/pmf(h) = (K-h)(k-h) / ((h+1)(N-K-k+h+1)).
  auto log_choose = [](std::uint32_t a, std::uint32_t b) {
    long double s = 0;
    for (std::uint32_t i = 1; i <= b; ++i)
      s += std::log(static_cast<long double>(a - b + i)) - std::log((long double)i);
    return s;
  };
  long double log_p = log_choose(K, lo) + log_choose(N - K, k - lo) - log_choose(N, k);
  long double total = 0;
  for (std::int64_t h = lo; h <= hi; ++h) {
    if ((upper && h >= x) || (!upper && h < x)) total += std::exp(log_p);
    if (h < hi) {
      log_p +=
          std::log((long double)(K - h) * (k - h)) - std::log((long double)(h + 1) * (std::int64_t{N} - K - k + h + 1));
    }
  }
  return total;
}

}  // namespace

TEST_CASE("parameters: the degree grows slowly with n", "[secagg][parameters]") {
  std::uint32_t previous = 0;
  for (std::uint32_t n : {100u, 300u, 1000u, 3000u, 10000u}) {
    const auto p = find_parameters(n, 0.1, 0.05);
    CAPTURE(n, p.k, p.t);
    REQUIRE(p.k % 2 == 0);
    REQUIRE(p.k + 1 < n);
    REQUIRE(p.k >= previous / 2);
    previous = p.k;
  }
  const auto big = find_parameters(1000, 0.1, 0.05);
  CAPTURE(big.k, big.t);
  REQUIRE(big.k < 200);  // much less than n - 1 = 999
  REQUIRE(find_parameters(10000, 0.1, 0.05).k < 250);
}

TEST_CASE("parameters: the degree is monotone in the dropout rate", "[secagg][parameters]") {
  for (std::uint32_t n : {100u, 1000u}) {
    std::uint32_t previous = 0;
    for (double delta : {0.0, 0.05, 0.1, 0.2, 0.3}) {
      const auto p = find_parameters(n, delta, 0.05);
      CAPTURE(n, delta, p.k, p.t);
      REQUIRE(p.k >= previous);
      previous = p.k;
    }
  }
}

TEST_CASE("parameters: the threshold exceeds k/2 and the stated tail bounds hold when recomputed",
          "[secagg][parameters]") {
  for (std::uint32_t n : {3u, 5u, 10u, 50u, 100u, 500u, 1000u}) {
    for (double delta : {0.0, 0.1, 0.2}) {
      for (double gamma : {0.0, 0.05, 0.1}) {
        CAPTURE(n, delta, gamma);
        sotto::secagg::SecAggParameters p;
        try {
          p = find_parameters(n, delta, gamma);
        } catch (const sotto::Error&) {
          continue;  // infeasible for a small cohort; checked below that large ones are feasible
        }
        CAPTURE(p.k, p.t);
        REQUIRE(p.k <= n - 1);
        REQUIRE((p.k % 2 == 0 || p.k == n - 1));
        REQUIRE(2 * p.t > p.k);
        REQUIRE(p.t <= p.k);
        REQUIRE(p.t >= 2);
        const auto dropped = std::min(n - 1, static_cast<std::uint32_t>(std::ceil(delta * n)));
        const auto corrupt = std::min(n - 1, static_cast<std::uint32_t>(std::ceil(gamma * n)));
        const long double fail = hypergeometric_tail(n - 1, n - 1 - dropped, p.k, p.t, false);
        const long double leak = hypergeometric_tail(n - 1, corrupt, p.k, p.t, true);
        REQUIRE(fail <= std::pow(2.0L, -20.0L) / n * 1.0001L);
        REQUIRE(leak <= std::pow(2.0L, -40.0L) / n * 1.0001L);
        // The reported log2 values agree with the independent computation.
        if (fail > 0) REQUIRE(std::abs(std::log2(fail) - p.log2_correctness_failure) < 1e-6);
        if (leak > 0) REQUIRE(std::abs(std::log2(leak) - p.log2_security_failure) < 1e-6);
        // A smaller even degree would not have met the bounds with any secure threshold (minimality): check k - 2.
        if (p.k >= 4 && p.k + 1 < n) {
          const std::uint32_t k = p.k - 2;
          bool smaller_works = false;
          for (std::uint32_t t = k / 2 + 1; t <= k && !smaller_works; ++t) {
            if (t < 2) continue;
            smaller_works = hypergeometric_tail(n - 1, corrupt, k, t, true) <= std::pow(2.0L, -40.0L) / n &&
                            hypergeometric_tail(n - 1, n - 1 - dropped, k, t, false) <= std::pow(2.0L, -20.0L) / n;
          }
          REQUIRE_FALSE(smaller_works);
        }
      }
    }
  }
  REQUIRE_NOTHROW(find_parameters(1000, 0.2, 0.1));
}

TEST_CASE("parameters: the complete graph rule is k = n - 1 and t = floor(k/2) + 1", "[secagg][parameters]") {
  const auto p = complete_graph_parameters(10, 0.2);
  REQUIRE(p.k == 9);
  REQUIRE(p.t == 5);
  REQUIRE(complete_graph_parameters(3, 0.0).t == 2);
  REQUIRE(complete_graph_parameters(100, 0.4).t == 50);
  REQUIRE_THROWS_AS(complete_graph_parameters(10, 0.6), sotto::Error);  // 9 - 6 = 3 survivors < t = 5
}

TEST_CASE("parameters: bad inputs are refused", "[secagg][parameters]") {
  REQUIRE_THROWS_AS(find_parameters(2, 0.1, 0.1), sotto::Error);
  REQUIRE_THROWS_AS(find_parameters(100, -0.1, 0.1), sotto::Error);
  REQUIRE_THROWS_AS(find_parameters(100, 1.0, 0.1), sotto::Error);
  REQUIRE_THROWS_AS(find_parameters(100, 0.1, 1.0), sotto::Error);
  REQUIRE_THROWS_AS(find_parameters(100, std::nan(""), 0.1), sotto::Error);
  REQUIRE_THROWS_AS(find_parameters(100, 0.1, 0.1, -1), sotto::Error);
  REQUIRE_THROWS_AS(find_parameters(100, 0.6, 0.3), sotto::Error);  // infeasible even for the complete graph
  REQUIRE_THROWS_AS(complete_graph_parameters(2, 0.1), sotto::Error);
  REQUIRE_THROWS_AS(complete_graph_parameters(10, 1.5), sotto::Error);
}
