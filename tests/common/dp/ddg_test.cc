// The Distributed Discrete Gaussian mechanism's pieces: the randomized rotation, the inflated norm bound,
// conditional rounding, the parameter choice, the encoding round trip with its noise, and the accountant.
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <vector>

#include "common/crypto/random_stream.h"
#include "common/dp/ddg_accounting.h"
#include "common/dp/ddg_encoding.h"
#include "common/dp/ddg_parameters.h"
#include "common/dp/randomized_rotation.h"
#include "common/dp/rdp_accountant.h"
#include "common/util/error.h"

using namespace sotto;
using namespace sotto::dp;

namespace {

RotationSeed seed_of(std::uint8_t b) {
  RotationSeed s{};
  s.fill(b);
  return s;
}

std::array<std::uint8_t, 32> stream_seed(std::uint8_t b) {
  std::array<std::uint8_t, 32> s{};
  s.fill(b);
  return s;
}

double norm(const std::vector<double>& v) {
  return std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0));
}

// The integer orders of the DDG authors' research code: 2..128 and 256.
std::vector<double> integer_orders() {
  std::vector<double> out;
  for (int a = 2; a <= 128; ++a) out.push_back(a);
  out.push_back(256);
  return out;
}

// Their experiment's setting (c = 1, d = 1024, n = h = 100, local stddev 0.1, beta = e^-0.5) at a given gamma.
DdgParameters paper_setting(double gamma) {
  DdgParameters p;
  p.padded = p.dimension = 1024;
  p.clip_norm = 1;
  p.honest = 100;
  p.scale = 1 / gamma;
  p.l2_bound = inflated_l2_bound(p.scale, 1024, kDefaultRoundingBeta);
  p.l1_bound = p.l2_bound * std::min(32.0, p.l2_bound);
  p.local_stddev = 0.1 * p.scale;
  return p;
}

}  // namespace

TEST_CASE("the randomized rotation keeps norms and is exactly inverted", "[dp][ddg]") {
  crypto::RandomStream random(stream_seed(3));
  std::vector<double> x(1000);
  for (double& v : x) v = static_cast<double>(random.below(std::uint64_t{2001})) / 1000.0 - 1.0;
  const RandomizedRotation rotation(x.size(), seed_of(9));
  REQUIRE(rotation.padded() == 1024);
  const auto y = rotation.rotate(x);
  REQUIRE(y.size() == 1024);
  CHECK(norm(y) == Approx(norm(x)).epsilon(1e-12));
  const auto back = rotation.unrotate(y);
  for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(back[i] == Approx(x[i]).margin(1e-12));
  // A spike is spread over every coordinate with magnitude 1/sqrt(m).
  std::vector<double> spike(1000, 0.0);
  spike[17] = 1;
  for (double v : rotation.rotate(spike)) REQUIRE(std::abs(v) == Approx(1 / 32.0));
  // Another seed, another rotation.
  CHECK(RandomizedRotation(x.size(), seed_of(10)).rotate(x) != y);
  REQUIRE_THROWS_AS(rotation.rotate(std::vector<double>(999)), Error);
}

TEST_CASE("the inflated L2 bound matches TensorFlow Federated's published cases", "[dp][ddg]") {
  // tensorflow_federated discretization_test.py InflatedNormTest: c = 1, d = 1e9, unscaled bound = scaled · gamma.
  struct Case { double gamma, beta, expected; };
  for (const Case& c : {Case{1e-9, 0, 1.0000316227766017}, Case{1e-2, 0, 317.2277660168379},
                        Case{1e-9, 0.01, 1.000000001642451}, Case{1e-2, 0.01, 158.13231445360802},
                        Case{1e-9, 0.5, 1.0000000007137142}, Case{1e-2, 0.5, 158.12296930808552}}) {
    INFO("gamma " << c.gamma << " beta " << c.beta);
    CHECK(inflated_l2_bound(1 / c.gamma, 1e9, c.beta) * c.gamma == Approx(c.expected).epsilon(1e-12));
  }
}

TEST_CASE("conditional rounding stays within its bound and is unbiased", "[dp][ddg]") {
  crypto::RandomStream random(stream_seed(5));
  std::vector<double> x(256);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = 3.0 * std::sin(static_cast<double>(i));
  const double bound = inflated_l2_bound(norm(x), 256, kDefaultRoundingBeta);
  std::vector<double> mean(x.size(), 0.0);
  constexpr int kDraws = 4000;
  for (int d = 0; d < kDraws; ++d) {
    const auto r = conditional_round(x, bound, random);
    std::vector<double> as_double(r.begin(), r.end());
    REQUIRE(norm(as_double) <= bound);
    for (std::size_t i = 0; i < x.size(); ++i) {
      REQUIRE(std::abs(as_double[i] - x[i]) < 1);
      mean[i] += as_double[i] / kDraws;
    }
  }
  for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(mean[i] == Approx(x[i]).margin(0.05));
  REQUIRE_THROWS_WITH(conditional_round(x, norm(x) / 2, random), Catch::Contains("too tight"));
}

TEST_CASE("DDG parameters keep the noisy sum of n clients within 2^bits and the noise at z times the bound",
          "[dp][ddg]") {
  for (std::uint32_t bits : {12u, 16u, 20u, 32u}) {
    DdgSettings s{bits, 0.5, 1.2, 50, 40, 80'394};
    const DdgParameters p = choose_ddg_parameters(s);
    INFO("bits " << bits << " scale " << p.scale);
    CHECK(p.padded == 131072);
    CHECK(p.l2_bound >= s.clip_norm * p.scale);
    CHECK(p.local_stddev == Approx(s.noise_multiplier * p.l2_bound / std::sqrt(40.0)));
    const double sigma_u = p.local_stddev / p.scale;
    const double spread = 2 * 4 * std::sqrt(0.25 * 50 * 50 / 131072.0 + 50 * (0.25 / (p.scale * p.scale) + sigma_u * sigma_u));
    CHECK(spread * p.scale <= std::ldexp(1.0, static_cast<int>(bits)) * (1 + 1e-9));
    CHECK(p.local_stddev <= 1 << 20);
  }
  REQUIRE_THROWS_WITH(choose_ddg_parameters({1, 1, 1, 3, 3, 10}), Catch::Contains("bits"));
  REQUIRE_THROWS_WITH(choose_ddg_parameters({16, 1, 1, 3, 4, 10}), Catch::Contains("honest"));
  REQUIRE_THROWS_WITH(choose_ddg_parameters({4, 1, 1, 100, 10, 10}), Catch::Contains("more bits"));
  REQUIRE_THROWS_WITH(choose_ddg_parameters({16, 1, 0, 3, 3, 10}), Catch::Contains("noise multiplier"));
}

TEST_CASE("the DDG encoding round trip gives the clipped sum, with the noise variance of every share",
          "[dp][ddg]") {
  for (std::uint32_t bits : {12u, 16u}) {
    constexpr std::uint32_t kClients = 5;
    constexpr std::size_t kDim = 40;
    const DdgParameters p = choose_ddg_parameters({bits, 1.0, 0.8, kClients, kClients, kDim});
    crypto::RandomStream random(stream_seed(static_cast<std::uint8_t>(bits)));
    // Inputs at and above the clip norm, so that clipping acts.
    std::vector<std::vector<float>> updates(kClients, std::vector<float>(kDim));
    std::vector<double> clipped_sum(kDim, 0.0);
    for (std::uint32_t c = 0; c < kClients; ++c) {
      for (std::size_t i = 0; i < kDim; ++i) updates[c][i] = static_cast<float>(std::cos(1.0 + c * 7.0 + i));
      double n2 = 0;
      for (float v : updates[c]) n2 += static_cast<double>(v) * v;
      for (std::size_t i = 0; i < kDim; ++i) clipped_sum[i] += updates[c][i] / std::max(1.0, std::sqrt(n2));
    }
    constexpr int kRounds = 400;
    std::vector<double> mean(kDim, 0.0), second(kDim, 0.0);
    for (int round = 0; round < kRounds; ++round) {
      const RotationSeed seed = seed_of(static_cast<std::uint8_t>(round));
      std::vector<std::uint32_t> sum(p.padded, 0);
      for (std::uint32_t c = 0; c < kClients; ++c) {
        const auto words = ddg_encode(updates[c], p, seed, random);
        for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += words[i];
      }
      const std::uint32_t mask = (std::uint32_t{1} << bits) - 1;
      for (auto& w : sum) w &= mask;
      const auto decoded = ddg_decode_sum(sum, p, seed);
      for (std::size_t i = 0; i < kDim; ++i) {
        const double e = decoded[i] - clipped_sum[i];
        mean[i] += e / kRounds;
        second[i] += e * e / kRounds;
      }
    }
    // The noise per decoded coordinate: n shares of local_stddev (scaled), plus rounding's (at most 1/4 each).
    const double sigma2 = kClients * (p.local_stddev * p.local_stddev) / (p.scale * p.scale);
    double avg_var = 0;
    for (std::size_t i = 0; i < kDim; ++i) {
      REQUIRE(std::abs(mean[i]) < 4 * std::sqrt(sigma2 / kRounds) + 1e-9);
      avg_var += second[i] / kDim;
    }
    INFO("bits " << bits << ": variance " << avg_var << " expected " << sigma2);
    CHECK(avg_var == Approx(sigma2).epsilon(0.1));
  }
}

TEST_CASE("DDG accounting matches the authors' research code's values", "[dp][ddg][accountant]") {
  // From a line-by-line port of google-research/federated distributed_dp/accounting_utils.py (compute_rdp_dgaussian
  // and its Zhu-Wang subsampling), which reproduces TFF's published inflated-norm cases; delta = 1e-5.
  const auto orders = integer_orders();
  struct Case { double gamma, q; std::uint64_t steps; double epsilon, order; };
  for (const Case& c : {Case{0.1, 1, 1, 10.594929, 3}, Case{0.01, 1, 1, 4.845728, 5},
                        Case{0.01, 0.01, 1000, 2.567308, 7}, Case{0.1, 0.01, 1000, 14.772613, 2}}) {
    INFO("gamma " << c.gamma << " q " << c.q);
    auto rdp = ddg_rdp(paper_setting(c.gamma), c.q, orders);
    for (double& r : rdp) r *= static_cast<double>(c.steps);
    const Epsilon e = epsilon_from_rdp(orders, rdp, 1e-5);
    CHECK(e.epsilon == Approx(c.epsilon).epsilon(1e-6));
    CHECK(e.order == c.order);
  }
  // Fractional orders are never charged below the unsampled bound's integer neighbours when sampled.
  const auto fractional = ddg_rdp(paper_setting(0.1), 0.5, std::vector<double>{2.5});
  CHECK(std::isinf(fractional[0]));
}

TEST_CASE("DDG epsilon falls with more noise and rises with fewer honest clients", "[dp][ddg][accountant]") {
  const auto orders = default_orders();
  auto epsilon = [&](double z, std::uint32_t honest) {
    const auto p = choose_ddg_parameters({16, 1, z, 20, honest, 10'000});
    return epsilon_from_rdp(orders, ddg_rdp(p, 1, orders), 1e-5).epsilon;
  };
  CHECK(epsilon(1.0, 20) > epsilon(2.0, 20));
  CHECK(epsilon(1.0, 20) == Approx(epsilon(1.0, 10)).epsilon(0.05));  // z is per the honest total: h cancels
  // As the bound tightens (more bits), DDG approaches the continuous Gaussian with the same multiplier.
  const auto p = choose_ddg_parameters({32, 1, 1.0, 20, 20, 10'000});
  const double ddg = epsilon_from_rdp(orders, ddg_rdp(p, 1, orders), 1e-5).epsilon;
  const double gaussian = subsampled_gaussian_epsilon(1, 1.0, 1, 1e-5).epsilon;
  CHECK(ddg == Approx(gaussian).epsilon(0.01));
}
