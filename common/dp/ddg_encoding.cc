#include "common/dp/ddg_encoding.h"

#include <cmath>
#include <string>

#include "common/dp/discrete_gaussian.h"
#include "common/model/clipping.h"
#include "common/util/error.h"

namespace sotto::dp {

namespace {

constexpr int kMaxRoundingDraws = 1000;

double uniform01(crypto::RandomStream& random) {
  return static_cast<double>(random.next_word() >> 11) * 0x1.0p-53;
}

std::uint32_t wrap(std::int64_t v, std::uint32_t bits) {
  const std::uint64_t mask = bits >= 32 ? 0xFFFFFFFFull : (std::uint64_t{1} << bits) - 1;
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(v) & mask);
}

std::int64_t signed_of(std::uint32_t w, std::uint32_t bits) {
  const std::int64_t modulus = std::int64_t{1} << bits;
  const auto v = static_cast<std::int64_t>(w);
  return v >= modulus / 2 ? v - modulus : v;
}

}  // namespace

std::vector<std::int64_t> conditional_round(std::span<const double> x, double bound, crypto::RandomStream& random) {
  std::vector<std::int64_t> out(x.size());
  for (int draw = 0; draw < kMaxRoundingDraws; ++draw) {
    double squared = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double lo = std::floor(x[i]);
      out[i] = static_cast<std::int64_t>(lo) + (uniform01(random) < x[i] - lo ? 1 : 0);
      squared += static_cast<double>(out[i]) * static_cast<double>(out[i]);
    }
    if (std::sqrt(squared) <= bound) return out;
  }
  throw Error("conditional rounding: no rounding of the vector within the L2 bound " + std::to_string(bound) +
              " in " + std::to_string(kMaxRoundingDraws) + " draws: the bound is too tight for this vector");
}

std::vector<std::int64_t> ddg_round(std::span<const float> update, const DdgParameters& p, const RotationSeed& seed,
                                    crypto::RandomStream& random) {
  if (update.size() != p.dimension) {
    throw Error("DDG encoding: the update has " + std::to_string(update.size()) + " entries, the plan expects " +
                std::to_string(p.dimension));
  }
  const double clip = model::flat_clip(update, p.clip_norm, "DDG encoding").factor;
  std::vector<double> x(update.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(update[i]) * clip;
  std::vector<double> rotated = RandomizedRotation(x.size(), seed).rotate(x);
  for (double& v : rotated) v *= p.scale;
  return conditional_round(rotated, p.l2_bound, random);
}

std::vector<std::uint32_t> ddg_encode(std::span<const float> update, const DdgParameters& p, const RotationSeed& seed,
                                      crypto::RandomStream& random, bool with_noise) {
  const std::vector<std::int64_t> rounded = ddg_round(update, p, seed, random);
  std::vector<std::uint32_t> out(rounded.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = wrap(rounded[i], p.bits);
  if (with_noise) add_discrete_gaussian_mod(out, p.local_stddev, p.bits, random);
  return out;
}

void add_discrete_gaussian_mod(std::span<std::uint32_t> words, double stddev, std::uint32_t bits,
                               crypto::RandomStream& random) {
  const DiscreteGaussian noise(stddev);
  for (auto& w : words) w = wrap(static_cast<std::int64_t>(w) + noise.sample(random), bits);
}

void add_discrete_gaussian(std::span<std::int64_t> values, double stddev, crypto::RandomStream& random) {
  const DiscreteGaussian noise(stddev);
  for (auto& v : values) v += noise.sample(random);
}

std::vector<double> ddg_decode_integers(std::span<const std::int64_t> values, const DdgParameters& p,
                                        const RotationSeed& seed) {
  if (values.size() != p.padded) {
    throw Error("DDG decoding: the sum has " + std::to_string(values.size()) + " entries, expected " +
                std::to_string(p.padded));
  }
  std::vector<double> y(values.size());
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<double>(values[i]) / p.scale;
  return RandomizedRotation(static_cast<std::size_t>(p.dimension), seed).unrotate(y);
}

std::vector<double> ddg_noised_update(std::span<const float> update, const DdgParameters& p,
                                      const RotationSeed& seed, crypto::RandomStream& random) {
  std::vector<std::int64_t> values = ddg_round(update, p, seed, random);
  add_discrete_gaussian(values, p.local_stddev, random);
  return ddg_decode_integers(values, p, seed);
}

std::vector<std::int64_t> signed_values(std::span<const std::uint32_t> words, std::uint32_t bits) {
  std::vector<std::int64_t> out(words.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = signed_of(words[i], bits);
  return out;
}

std::vector<double> ddg_decode_sum(std::span<const std::uint32_t> sum, const DdgParameters& p,
                                   const RotationSeed& seed) {
  return ddg_decode_integers(signed_values(sum, p.bits), p, seed);
}

}  // namespace sotto::dp
