#include "common/dp/rdp_accountant.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <string>

#include "common/util/error.h"
#include "tests/support/test_support.h"

using namespace sotto;
using namespace sotto::dp;

namespace {

// RDP of one step, by numerical integration with mpmath (python3-mpmath): A = E_{x ~ N(0, s^2)} of
// ((1 - q) + q exp((2x - 1) / (2 s^2)))^alpha, RDP = log(A) / (alpha - 1). Independent of the series in the code.
double mpmath_rdp(double q, double sigma, double alpha) {
  char program[1024];
  std::snprintf(program, sizeof program,
                "import mpmath as m; m.mp.dps = 40; q, s, a = m.mpf('%.17g'), m.mpf('%.17g'), m.mpf('%.17g'); "
                "f = lambda x: m.npdf(x, 0, s) * ((1 - q) + q * m.exp((2 * x - 1) / (2 * s * s))) ** a; "
                "print(m.nstr(m.log(m.quad(f, [-m.inf, 0, 1, m.inf])) / (a - 1), 20))",
                q, sigma, alpha);
  return test::python3_number(program);
}

}  // namespace

TEST_CASE("RDP of the subsampled Gaussian matches dp_accounting's published values", "[dp][accountant]") {
  // dp_accounting, rdp_privacy_accountant_test.py, test_compute_rdp_poisson_sampled_gaussian: q = 0.01, sigma = 2.5,
  // 50 steps, at orders 1.5, 2.5, 5, 50 and 100.
  RdpAccountant accountant({1.5, 2.5, 5, 50, 100});
  accountant.compose(0.01, 2.5, 50);
  const double published[] = {6.70579741e-04, 1.08548710e-03, 2.18075656e-03, 2.38460375e-02, 1.67416308e02};
  for (std::size_t i = 2; i < 5; ++i) {  // integer orders: the same exact sum
    CAPTURE(accountant.orders()[i]);
    CHECK(accountant.rdp()[i] == Approx(published[i]).epsilon(1e-5));
  }
  // Fractional orders: dp_accounting adds every term's magnitude, an upper bound; the signed series here is exact
  // (it matches the numerical integration) and so at most theirs.
  for (std::size_t i = 0; i < 2; ++i) {
    CAPTURE(accountant.orders()[i]);
    CHECK(accountant.rdp()[i] <= published[i] * (1 + 1e-6));
    CHECK(accountant.rdp()[i] == Approx(published[i]).epsilon(0.04));
    CHECK(accountant.rdp()[i] == Approx(50 * mpmath_rdp(0.01, 2.5, accountant.orders()[i])).epsilon(1e-6));
  }
}

TEST_CASE("the RDP to (epsilon, delta) conversion matches dp_accounting's hand-computed cases", "[dp][accountant]") {
  // Constant RDP 1.1 at orders 2..32 (pure DP), delta 1e-5: epsilon 1.32783806176 at order 32.
  std::vector<double> orders, rdp;
  for (int a = 2; a <= 32; ++a) {
    orders.push_back(a);
    rdp.push_back(1.1);
  }
  const Epsilon pure = epsilon_from_rdp(orders, rdp, 1e-5);
  CHECK(pure.epsilon == Approx(1.32783806176).epsilon(1e-10));
  CHECK(pure.order == 32);

  // q = 1 (the plain Gaussian, RDP alpha / (2 sigma^2) in closed form): sigma = 4.530877117 gives exactly
  // (1, 1e-6)-DP over the dense grid 1.0 .. 100 by 0.001.
  RdpAccountant dense([] {
    std::vector<double> o;
    for (int i = 1001; i < 100000; ++i) o.push_back(0.001 * i);
    return o;
  }());
  dense.compose(1.0, 4.530877117, 1);
  CHECK(dense.epsilon(1e-6).epsilon == Approx(1.0).epsilon(1e-7));
  CHECK(subsampled_gaussian_rdp(1.0, 2.0, 8) == Approx(8 / (2 * 4.0)));
}

TEST_CASE("RDP at integer and fractional orders agrees with an independent numerical integration",
          "[dp][accountant]") {
  for (const auto& [q, sigma, alpha] :
       {std::tuple{0.2, 0.9, 7.0}, std::tuple{0.5, 2.0, 3.0}, std::tuple{0.01, 1.1, 32.0}, std::tuple{0.05, 1.3, 2.5},
        std::tuple{0.01, 1.1, 12.3}, std::tuple{0.1, 3.0, 1.7}, std::tuple{0.3, 1.0, 4.6}}) {
    CAPTURE(q, sigma, alpha);
    CHECK(subsampled_gaussian_rdp(q, sigma, alpha) == Approx(mpmath_rdp(q, sigma, alpha)).epsilon(1e-6));
  }
}

TEST_CASE("epsilon falls with noise and rises with steps and sampling rate, and noise_multiplier_for inverts it",
          "[dp][accountant]") {
  const double base = subsampled_gaussian_epsilon(0.01, 1.1, 1000, 1e-5).epsilon;
  CHECK(base > 0);
  CHECK(subsampled_gaussian_epsilon(0.01, 1.3, 1000, 1e-5).epsilon < base);
  CHECK(subsampled_gaussian_epsilon(0.01, 1.1, 2000, 1e-5).epsilon > base);
  CHECK(subsampled_gaussian_epsilon(0.02, 1.1, 1000, 1e-5).epsilon > base);
  CHECK(subsampled_gaussian_epsilon(0.01, 1.1, 1000, 1e-6).epsilon > base);

  for (double target : {0.5, 2.0, 8.0}) {
    CAPTURE(target);
    const double sigma = noise_multiplier_for(0.01, 1000, 1e-5, target);
    CHECK(subsampled_gaussian_epsilon(0.01, sigma, 1000, 1e-5).epsilon <= target);
    CHECK(subsampled_gaussian_epsilon(0.01, sigma * (1 - 1e-4), 1000, 1e-5).epsilon > target);
  }
}

TEST_CASE("the accountant refuses arguments outside their ranges, naming them", "[dp][accountant]") {
  CHECK_THROWS_WITH(subsampled_gaussian_rdp(0, 1, 2), Catch::Contains("sampling rate"));
  CHECK_THROWS_WITH(subsampled_gaussian_rdp(1.5, 1, 2), Catch::Contains("sampling rate"));
  CHECK_THROWS_WITH(subsampled_gaussian_rdp(0.1, 0, 2), Catch::Contains("noise multiplier"));
  CHECK_THROWS_WITH(subsampled_gaussian_rdp(0.1, 1, 1), Catch::Contains("order"));
  CHECK_THROWS_WITH(subsampled_gaussian_epsilon(0.1, 1, 10, 0), Catch::Contains("delta"));
  CHECK_THROWS_WITH(subsampled_gaussian_epsilon(0.1, 1, 0, 1e-5), Catch::Contains("steps"));
  CHECK_THROWS_WITH(noise_multiplier_for(0.1, 10, 1e-5, -1), Catch::Contains("target epsilon"));
}
