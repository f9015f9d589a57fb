#include "common/secagg/quantizer.h"

#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common/util/error.h"

using sotto::secagg::Quantizer;
using sotto::secagg::QuantizerParams;

namespace {

std::vector<std::uint32_t> modular_sum(const std::vector<std::vector<std::uint32_t>>& vectors) {
  std::vector<std::uint32_t> sum(vectors.front().size(), 0);
  for (const auto& v : vectors) {
    for (std::size_t i = 0; i < v.size(); ++i) sum[i] += v[i];  // wraps mod 2^32
  }
  return sum;
}

}  // namespace

TEST_CASE("quantizer: the decoded sum of n encoded updates equals their sum within one step per client",
          "[secagg][quantizer]") {
  const std::uint32_t n = 50;
  Quantizer q({1.0, n});
  std::vector<std::vector<float>> updates(n, std::vector<float>(64));
  std::vector<double> expected(64, 0);
  for (std::uint32_t c = 0; c < n; ++c) {
    for (std::size_t i = 0; i < 64; ++i) {
      updates[c][i] = static_cast<float>(0.1 * std::sin(0.7 * c + 1.3 * i));  // norm < 1: not clipped
      expected[i] += updates[c][i];
    }
  }
  std::vector<std::vector<std::uint32_t>> encoded;
  for (const auto& u : updates) encoded.push_back(q.encode(u));
  const auto decoded = q.decode_sum(modular_sum(encoded));
  for (std::size_t i = 0; i < 64; ++i) CHECK(std::abs(decoded[i] - expected[i]) <= n / q.scale());
}

TEST_CASE("quantizer: n clients at the clip bound with the same sign do not overflow", "[secagg][quantizer]") {
  const std::uint32_t n = 1000;
  Quantizer q({2.0, n});
  const std::vector<float> extreme = {2.0f, 0.0f};
  const std::vector<float> negative = {-2.0f, 0.0f};
  std::vector<std::vector<std::uint32_t>> pos(n, q.encode(extreme)), neg(n, q.encode(negative));
  CHECK(q.decode_sum(modular_sum(pos))[0] == Approx(2.0 * n).epsilon(1e-6));
  CHECK(q.decode_sum(modular_sum(neg))[0] == Approx(-2.0 * n).epsilon(1e-6));
}

TEST_CASE("quantizer: updates longer than the clip norm are scaled down to it", "[secagg][quantizer]") {
  Quantizer q({1.0, 1});
  double norm = 0;
  const auto e = q.encode(std::vector<float>{3.0f, 4.0f}, &norm);
  CHECK(norm == Approx(1.0));
  const auto d = q.decode_sum(e);
  CHECK(d[0] == Approx(0.6).margin(1e-6));
  CHECK(d[1] == Approx(0.8).margin(1e-6));
}

TEST_CASE("quantizer: randomized rounding is unbiased", "[secagg][quantizer]") {
  // A clip bound far above the update's norm keeps it unclipped; the scaled value sits 30% of the way from 0 to 1.
  Quantizer q({1e9, 1});
  const float x = static_cast<float>(0.3 / q.scale());
  const std::vector<float> update(20000, x);
  const auto e = q.encode(update);
  const double ones = std::count(e.begin(), e.end(), 1u);
  CHECK(std::count_if(e.begin(), e.end(), [](std::uint32_t v) { return v > 1; }) == 0);
  // Binomial(20000, 0.3): mean 6000, sd ~65; 6 sd either way.
  CHECK(ones > 6000 - 400);
  CHECK(ones < 6000 + 400);
}

TEST_CASE("quantizer: bad parameters and non-finite updates are refused", "[secagg][quantizer]") {
  CHECK_THROWS_WITH(Quantizer({0.0, 10}), Catch::Contains("clip_norm"));
  CHECK_THROWS_WITH(Quantizer({1.0, 0}), Catch::Contains("max_clients"));
  Quantizer q({1.0, 10});
  CHECK_THROWS_WITH(q.encode(std::vector<float>{1.0f, std::numeric_limits<float>::quiet_NaN()}),
                    Catch::Contains("NaN"));
}

TEST_CASE("quantizer: a coin seed makes the rounding reproducible and still unbiased", "[secagg][quantizer]") {
  Quantizer q({1e9, 1});
  const float x = static_cast<float>(0.3 / q.scale());
  const std::vector<float> update(20000, x);
  const std::vector<std::uint8_t> seed_a(32, 7), seed_b(32, 8);
  const auto a1 = q.encode_with_coin_seed(update, seed_a);
  const auto a2 = q.encode_with_coin_seed(update, seed_a);
  const auto b = q.encode_with_coin_seed(update, seed_b);
  CHECK(a1 == a2);
  CHECK(a1 != b);
  const double ones = std::count(a1.begin(), a1.end(), 1u);
  CHECK(ones > 6000 - 400);
  CHECK(ones < 6000 + 400);
  // Longer than one coin block (4096 coordinates), so the stream continues across blocks instead of restarting.
  CHECK(!std::equal(a1.begin(), a1.begin() + 4096, a1.begin() + 4096));
  CHECK_THROWS_WITH(q.encode_with_coin_seed(update, std::vector<std::uint8_t>(5, 0)), Catch::Contains("seed"));
}

TEST_CASE("quantizer: fewer bits shrink the scale so the sum still fits, and decode reads the low bits", "[secagg][quantizer]") {
  const std::uint32_t n = 10;
  Quantizer q16({1.0, n, 16});
  Quantizer q32({1.0, n, 32});
  CHECK(q16.scale() < q32.scale() / 60000);
  std::vector<std::vector<std::uint32_t>> encoded;
  std::vector<float> extreme = {1.0f, 0.0f};
  for (std::uint32_t c = 0; c < n; ++c) {
    encoded.push_back(q16.encode(c % 2 ? std::vector<float>{0.3f, -0.4f} : extreme));
    for (auto w : encoded.back()) CHECK(w < 65536u);
  }
  auto sum = modular_sum(encoded);
  for (auto& w : sum) w += 0xABCD0000u;  // high bits, as a sum mod 2^32 of masked words may carry, are ignored
  const auto decoded = q16.decode_sum(sum);
  CHECK(decoded[0] == Approx(5 * 1.0 + 5 * 0.3).margin(n / q16.scale()));
  CHECK(decoded[1] == Approx(5 * -0.4).margin(n / q16.scale()));
  CHECK_THROWS_WITH(Quantizer({1.0, 1000, 8}), Catch::Contains("bits"));
  CHECK_THROWS_WITH(Quantizer({1.0, 10, 33}), Catch::Contains("bits"));
}
