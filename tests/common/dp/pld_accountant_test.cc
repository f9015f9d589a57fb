// The PLD accountant against what it must agree with: the exact Gaussian mechanism (Balle and Wang 2018: the
// N-fold composition of the Gaussian with noise multiplier s is the Gaussian with s/sqrt(N)), an independent
// numerical integration of one round's delta with mpmath, the RDP accountant it must never exceed, and its own
// finer grids.
#include "common/dp/pld_accountant.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <string>

#include "common/dp/fft_convolution.h"
#include "common/dp/rdp_accountant.h"
#include "common/util/error.h"
#include "tests/support/test_support.h"

using namespace sotto;
using namespace sotto::dp;

namespace {

using Adjacency = PrivacyLossDistribution::Adjacency;

double phi(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// delta(eps) of the Gaussian mechanism with sensitivity 1 and noise s (Balle and Wang 2018, Theorem 8).
double gaussian_delta(double s, double eps) { return phi(-eps * s + 0.5 / s) - std::exp(eps) * phi(-eps * s - 0.5 / s); }

double gaussian_epsilon(double s, double delta) {
  double lo = 0, hi = 100;
  for (int i = 0; i < 200; ++i) {
    const double mid = (lo + hi) / 2;
    (gaussian_delta(s, mid) > delta ? lo : hi) = mid;
  }
  return hi;
}

// One round's delta(eps) in the remove direction, by numerical integration with mpmath (python3-mpmath) of
// max(0, p(x) - e^eps q(x)) for p = (1 - q) N(0, s^2) + q N(1, s^2) and q = N(0, s^2), split where it turns on.
double mpmath_delta(double q, double sigma, double eps) {
  char program[1400];
  std::snprintf(program, sizeof program,
                "import mpmath as m; m.mp.dps = 40; q, s, e = m.mpf('%.17g'), m.mpf('%.17g'), m.mpf('%.17g'); "
                "x0 = s * s * m.log((m.exp(e) - (1 - q)) / q) + m.mpf(1) / 2; "
                "f = lambda x: (1 - q) * m.npdf(x, 0, s) + q * m.npdf(x, 1, s) - m.exp(e) * m.npdf(x, 0, s); "
                "print(m.nstr(m.quad(f, [x0, x0 + 5 * s, x0 + 20 * s, m.inf]), 20))",
                q, sigma, eps);
  return test::python3_number(program);
}

}  // namespace

TEST_CASE("fft_convolve is the linear convolution", "[dp][pld]") {
  std::vector<double> a(300), b(200);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = std::sin(0.1 * static_cast<double>(i)) + 1.5;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = std::cos(0.07 * static_cast<double>(i)) + 1.1;
  const auto c = fft_convolve(a, b);
  REQUIRE(c.size() == 499);
  for (std::size_t k : {0ul, 1ul, 150ul, 299ul, 350ul, 498ul}) {
    double direct = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (k >= i && k - i < b.size()) direct += a[i] * b[k - i];
    }
    CHECK(c[k] == Approx(direct).epsilon(1e-12));
  }
  CHECK(fft_convolve(a, {}).empty());
}

TEST_CASE("one round's PLD has the exact delta at its grid points and bounds it from above between them",
          "[dp][pld]") {
  const double q = 0.01, sigma = 1.1, interval = 1e-3;
  const auto pld = PrivacyLossDistribution::subsampled_gaussian(q, sigma, Adjacency::kRemove, interval);
  for (double eps : {0.1, 0.5, 1.0, 2.0}) {  // grid points (multiples of the interval)
    INFO("epsilon " << eps);
    CHECK(pld.delta_for_epsilon(eps) == Approx(mpmath_delta(q, sigma, eps)).epsilon(1e-6));
  }
  for (double eps : {0.1004, 0.5007, 1.0002}) {  // between grid points: pessimistic, and only just
    INFO("epsilon " << eps);
    const double exact = mpmath_delta(q, sigma, eps);
    CHECK(pld.delta_for_epsilon(eps) >= exact * (1 - 1e-9));
    CHECK(pld.delta_for_epsilon(eps) <= exact * 1.01);
  }
}

TEST_CASE("the PLD of the Gaussian mechanism composed N times gives the exact Gaussian's epsilon from above",
          "[dp][pld]") {
  struct Case {
    double sigma;
    std::uint64_t steps;
    double delta;
  };
  for (const Case c : {Case{1.0, 1, 1e-5}, Case{2.0, 10, 1e-5}, Case{5.0, 100, 1e-6}, Case{20.0, 1000, 1e-5}}) {
    INFO("sigma " << c.sigma << ", " << c.steps << " steps");
    const double exact = gaussian_epsilon(c.sigma / std::sqrt(static_cast<double>(c.steps)), c.delta);
    const double pld = pld_subsampled_gaussian_epsilon(1.0, c.sigma, c.steps, c.delta);
    CHECK(pld >= exact * (1 - 1e-9));
    CHECK(pld <= exact * 1.005 + 1e-4);
  }
}

TEST_CASE("the PLD epsilon of the subsampled Gaussian is below RDP's and converges as the grid refines",
          "[dp][pld]") {
  // The case: q = 0.01, sigma = 1.1, 1,000 steps, delta = 1e-5 (RDP: 1.7118).
  const double rdp = subsampled_gaussian_epsilon(0.01, 1.1, 1000, 1e-5).epsilon;
  const double pld = pld_subsampled_gaussian_epsilon(0.01, 1.1, 1000, 1e-5);
  INFO("rdp " << rdp << ", pld " << pld);
  CHECK(pld < rdp);
  CHECK(rdp / pld > 1.05);  // 1.13 here (1.7118 against 1.5154); the issue expected "about 1.2x"
  CHECK(rdp / pld < 1.4);
  for (double q : {0.001, 0.05, 0.3}) {
    INFO("q " << q);
    CHECK(pld_subsampled_gaussian_epsilon(q, 0.9, 200, 1e-5) < subsampled_gaussian_epsilon(q, 0.9, 200, 1e-5).epsilon);
  }
  // A coarser grid is pessimistic: its epsilon is higher, and close.
  double previous = 0;
  for (double interval : {1e-4, 2e-4, 4e-4}) {
    double epsilon = 0;
    for (auto adjacency : {Adjacency::kRemove, Adjacency::kAdd}) {
      const auto one = PrivacyLossDistribution::subsampled_gaussian(0.01, 1.1, adjacency, interval);
      epsilon = std::max(epsilon, one.self_composed(1000).epsilon_for_delta(1e-5));
    }
    INFO("interval " << interval << ": " << epsilon);
    CHECK(epsilon >= previous - 1e-9);
    CHECK(epsilon <= pld * 1.01);
    previous = epsilon;
  }
}

TEST_CASE("the PLD epsilon grows with steps and q and falls with sigma, and noise-multiplier inverts it",
          "[dp][pld]") {
  CHECK(pld_subsampled_gaussian_epsilon(0.02, 1.0, 100, 1e-5) < pld_subsampled_gaussian_epsilon(0.02, 1.0, 200, 1e-5));
  CHECK(pld_subsampled_gaussian_epsilon(0.02, 1.0, 100, 1e-5) < pld_subsampled_gaussian_epsilon(0.04, 1.0, 100, 1e-5));
  CHECK(pld_subsampled_gaussian_epsilon(0.02, 1.2, 100, 1e-5) < pld_subsampled_gaussian_epsilon(0.02, 1.0, 100, 1e-5));
  const double target = pld_subsampled_gaussian_epsilon(0.02, 1.0, 100, 1e-5);
  const double sigma = pld_noise_multiplier_for(0.02, 100, 1e-5, target);
  CHECK(sigma == Approx(1.0).epsilon(1e-3));
  CHECK(pld_subsampled_gaussian_epsilon(0.02, sigma, 100, 1e-5) <= target);
}

TEST_CASE("the PLD accountant refuses bad arguments naming them", "[dp][pld]") {
  REQUIRE_THROWS_WITH(pld_subsampled_gaussian_epsilon(0, 1, 10, 1e-5), Catch::Contains("sampling rate"));
  REQUIRE_THROWS_WITH(pld_subsampled_gaussian_epsilon(1.5, 1, 10, 1e-5), Catch::Contains("sampling rate"));
  REQUIRE_THROWS_WITH(pld_subsampled_gaussian_epsilon(0.1, 0, 10, 1e-5), Catch::Contains("noise multiplier"));
  REQUIRE_THROWS_WITH(pld_subsampled_gaussian_epsilon(0.1, 1, 0, 1e-5), Catch::Contains("steps"));
  REQUIRE_THROWS_WITH(pld_subsampled_gaussian_epsilon(0.1, 1, 10, 1), Catch::Contains("delta"));
}
