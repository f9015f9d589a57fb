#include "common/dp/discrete_gaussian.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <vector>

using namespace sotto;
using namespace sotto::dp;

namespace {

crypto::RandomStream seeded(std::uint8_t tag) {
  std::array<std::uint8_t, 32> seed{};
  seed.fill(tag);
  return crypto::RandomStream(std::span<const std::uint8_t, 32>(seed));
}

// The chi-square statistic of `draws` against `pmf` (unnormalized weights by value), over bins of consecutive
// values each expected to hold at least 50 draws; returns it with its degrees of freedom.
std::pair<double, int> chi_square(const std::map<std::int64_t, std::uint64_t>& counts, std::uint64_t draws,
                                  const std::function<double(std::int64_t)>& weight, std::int64_t span) {
  double total = 0;
  for (std::int64_t x = -span; x <= span; ++x) total += weight(x);
  double statistic = 0, expected_bin = 0, observed_bin = 0;
  int bins = 0;
  for (std::int64_t x = -span; x <= span; ++x) {
    expected_bin += static_cast<double>(draws) * weight(x) / total;
    if (auto it = counts.find(x); it != counts.end()) observed_bin += static_cast<double>(it->second);
    if (expected_bin >= 50 || x == span) {
      statistic += (observed_bin - expected_bin) * (observed_bin - expected_bin) / std::max(expected_bin, 1e-9);
      ++bins;
      expected_bin = observed_bin = 0;
    }
  }
  return {statistic, bins - 1};
}

// A chi-square with k degrees of freedom exceeds k + 5 sqrt(2k) with probability well under 1e-5.
bool plausible(const std::pair<double, int>& chi) {
  return chi.first < chi.second + 5 * std::sqrt(2.0 * chi.second);
}

}  // namespace

TEST_CASE("the discrete Gaussian has the exact pmf, mean 0 and its variance, for small and large sigma",
          "[dp][sampler]") {
  constexpr std::uint64_t kDraws = 1'000'000;
  for (double sigma : {0.4, 3.0, 1500.0, 20000.0}) {  // 20000: the 128-bit path
    CAPTURE(sigma);
    const DiscreteGaussian gaussian(sigma);
    auto random = seeded(static_cast<std::uint8_t>(static_cast<int>(sigma * 10) & 0xFF));
    std::map<std::int64_t, std::uint64_t> counts;
    double sum = 0, sum_sq = 0;
    for (std::uint64_t i = 0; i < kDraws; ++i) {
      const std::int64_t x = gaussian.sample(random);
      ++counts[x];
      sum += static_cast<double>(x);
      sum_sq += static_cast<double>(x) * static_cast<double>(x);
    }
    const double s2 = gaussian.variance_parameter();
    const auto weight = [&](std::int64_t x) { return std::exp(-static_cast<double>(x * x) / (2 * s2)); };
    const auto span = static_cast<std::int64_t>(12 * sigma + 12);
    double variance = 0, total = 0;  // of the exact pmf (slightly below sigma^2 for small sigma)
    for (std::int64_t x = -span; x <= span; ++x) {
      total += weight(x);
      variance += static_cast<double>(x * x) * weight(x);
    }
    variance /= total;
    const double mean = sum / kDraws;
    CHECK(std::abs(mean) < 5 * std::sqrt(variance / kDraws));
    CHECK(sum_sq / kDraws == Approx(variance).epsilon(0.01));
    const auto chi = chi_square(counts, kDraws, weight, span);
    INFO("chi-square " << chi.first << " with " << chi.second << " degrees of freedom");
    CHECK(plausible(chi));
  }
}

TEST_CASE("the discrete Laplace has the exact pmf", "[dp][sampler]") {
  constexpr std::uint64_t kDraws = 1'000'000;
  for (std::uint64_t t : {1u, 7u, 400u}) {
    CAPTURE(t);
    auto random = seeded(static_cast<std::uint8_t>(t));
    std::map<std::int64_t, std::uint64_t> counts;
    for (std::uint64_t i = 0; i < kDraws; ++i) ++counts[sample_discrete_laplace(t, random)];
    const auto weight = [&](std::int64_t x) { return std::exp(-std::abs(static_cast<double>(x)) / t); };
    const auto chi = chi_square(counts, kDraws, weight, static_cast<std::int64_t>(30 * t + 30));
    INFO("chi-square " << chi.first << " with " << chi.second << " degrees of freedom");
    CHECK(plausible(chi));
  }
}

TEST_CASE("Bernoulli(exp(-gamma)) has its probability for rational gamma above and below 1", "[dp][sampler]") {
  constexpr int kDraws = 400'000;
  auto random = seeded(9);
  for (const auto& [n, d] : {std::pair{0, 1}, std::pair{1, 3}, std::pair{1, 1}, std::pair{5, 2}}) {
    CAPTURE(n, d);
    int hits = 0;
    for (int i = 0; i < kDraws; ++i) {
      hits += bernoulli_exp_minus(static_cast<std::uint64_t>(n), static_cast<std::uint64_t>(d), random) ? 1 : 0;
    }
    const double p = std::exp(-static_cast<double>(n) / d);
    CHECK(std::abs(hits / static_cast<double>(kDraws) - p) < 5 * std::sqrt(p * (1 - p) / kDraws) + 1e-12);
  }
}

TEST_CASE("the samplers refuse parameters outside their ranges and a seeded stream repeats itself", "[dp][sampler]") {
  CHECK_THROWS_WITH(DiscreteGaussian(0.01), Catch::Contains("sigma"));
  CHECK_THROWS_WITH(DiscreteGaussian(2e6), Catch::Contains("sigma"));
  auto random = seeded(1);
  CHECK_THROWS_WITH(sample_discrete_laplace(0, random), Catch::Contains("scale"));
  auto a = seeded(3), b = seeded(3);
  const DiscreteGaussian g(10);
  for (int i = 0; i < 100; ++i) CHECK(g.sample(a) == g.sample(b));
  crypto::RandomStream fresh1, fresh2;  // keyed from RAND_bytes: different streams
  CHECK(fresh1.next_word() != fresh2.next_word());
}
