// Adaptive clipping's pieces: the clipped-count coordinate's weight gives the asked-for noise on the sum of bits, a
// client's entry, the decoding of the fraction left unclipped through the real DDG encoding, and the geometric
// update of the clip norm with its ceiling.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "common/crypto/random_stream.h"
#include "common/dp/adaptive_clipping.h"
#include "common/dp/ddg_encoding.h"
#include "common/dp/ddg_parameters.h"
#include "common/util/error.h"

using namespace sotto;
using namespace sotto::dp;

TEST_CASE("adaptive clipping: the count weight makes the noise on the sum of bits the asked-for one", "[dp][adaptive]") {
  for (double z : {0.3, 1.0, 2.5}) {
    for (double sigma_b : {2.0, 5.0, 50.0}) {
      for (double clip : {0.1, 1.0, 30.0}) {
        const double w = clipped_count_weight(clip, z, sigma_b);
        // The mechanism's noise is z times its clip norm, on every coordinate: on the count's, in bits, sigma_b.
        CHECK(z * joint_clip_norm(clip, w) / w == Approx(sigma_b).epsilon(1e-12));
      }
    }
  }
  CHECK_THROWS_WITH(clipped_count_weight(1, 2, 1), Catch::Contains("clipped_count_stddev"));
  CHECK_THROWS_AS(clipped_count_weight(0, 1, 5), Error);
  CHECK(count_stddev_for(AdaptiveClipping{}, 100) == Approx(5));
  CHECK(count_stddev_for(AdaptiveClipping{true, 0.5, 0.2, 3}, 100) == Approx(3));
}

TEST_CASE("adaptive clipping: a client's vector is its clipped update and its bit", "[dp][adaptive]") {
  const auto kept = with_clipped_count({3, 4}, 5, 10, 2);
  CHECK(kept == std::vector<float>{3, 4, 1});
  const auto clipped = with_clipped_count({3, 4}, 5, 2.5, 2);
  REQUIRE(clipped.size() == 3);
  CHECK(clipped[0] == Approx(1.5));
  CHECK(clipped[1] == Approx(2));
  CHECK(clipped[2] == -1);
  // Within the joint bound, so the encoding's own clipping does not scale it again.
  double norm = 0;
  for (float v : clipped) norm += v * v;
  CHECK(std::sqrt(norm) <= joint_clip_norm(2.5, 2) * (1 + 1e-6));
}

TEST_CASE("adaptive clipping: the fraction left unclipped decodes from a noised DDG sum", "[dp][adaptive]") {
  // Twelve clients, eight of them within the clip norm, encoded and summed mod 2^16 with their noise shares; the
  // decoded count coordinate gives 8/12 on average, with the noise sigma_b / 12 around it.
  constexpr std::uint32_t kClients = 12;
  constexpr double kClip = 1, kZ = 0.5, kSigmaB = 1.5;
  const double w = clipped_count_weight(kClip, kZ, kSigmaB);
  const DdgParameters p =
      choose_ddg_parameters({16, joint_clip_norm(kClip, w), kZ, kClients, kClients, 7, kDefaultRoundingBeta, 4});
  crypto::RandomStream random;
  constexpr int kTrials = 300;
  double sum = 0, squares = 0;
  for (int t = 0; t < kTrials; ++t) {
    RotationSeed seed{};
    seed.fill(static_cast<std::uint8_t>(t));
    std::vector<std::uint32_t> total(p.padded, 0);
    for (std::uint32_t c = 0; c < kClients; ++c) {
      const double norm = c < 8 ? 0.5 : 3.0;
      std::vector<float> update(6, static_cast<float>(norm / std::sqrt(6.0)));
      const auto input = ddg_encode(with_clipped_count(update, norm, kClip, w), p, seed, random, true);
      for (std::size_t i = 0; i < total.size(); ++i) total[i] = (total[i] + input[i]) & 0xffff;
    }
    const auto decoded = ddg_decode_sum(total, p, seed);
    REQUIRE(decoded.size() == 7);
    const double fraction = unclipped_fraction(decoded.back(), w, kClients);
    sum += fraction;
    squares += (fraction - 8.0 / 12) * (fraction - 8.0 / 12);
  }
  const double spread = kSigmaB / kClients;  // at least: rounding inflates the bound a little
  CHECK(std::abs(sum / kTrials - 8.0 / 12) < 5 * 1.5 * spread / std::sqrt(kTrials));
  const double rms = std::sqrt(squares / kTrials);
  CHECK(rms > 0.8 * spread);
  CHECK(rms < 1.5 * spread);
}

TEST_CASE("adaptive clipping: the clip norm moves geometrically towards the target quantile", "[dp][adaptive]") {
  const AdaptiveClipping options{true, 0.5, 0.2, 0};
  CHECK(next_clip_norm(2, 0.5, options, 0) == Approx(2));
  CHECK(next_clip_norm(2, 1.0, options, 0) == Approx(2 * std::exp(-0.1)));  // too few clipped: shrink
  CHECK(next_clip_norm(2, 0.0, options, 0) == Approx(2 * std::exp(0.1)));   // too many clipped: grow
  CHECK(next_clip_norm(2, 0.0, options, 2.1) == Approx(2.1));                // never above the ceiling
  CHECK(unclipped_fraction(-100, 1, 10) == 0);  // noise past the ends is clamped
  CHECK(unclipped_fraction(100, 1, 10) == 1);
  CHECK(unclipped_fraction(1, 2, 10) == Approx(0.55));
}
