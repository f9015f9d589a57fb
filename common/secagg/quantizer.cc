#include "common/secagg/quantizer.h"

#include <openssl/err.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "common/crypto/prg.h"
#include "common/model/clipping.h"
#include "common/secagg/messages.h"
#include "common/util/error.h"

namespace sotto::secagg {

namespace {

constexpr std::size_t kCoinBlock = 4096;  // coordinates per RAND_bytes call

void fill_random(std::span<std::uint64_t> words) {
  if (RAND_bytes(reinterpret_cast<unsigned char*>(words.data()), static_cast<int>(words.size() * 8)) != 1) {
    throw Error("RAND_bytes failed: " + std::to_string(ERR_get_error()));
  }
}

}  // namespace

Quantizer::Quantizer(QuantizerParams params) : params_(params) {
  if (!(params_.clip_norm > 0) || !std::isfinite(params_.clip_norm)) {
    throw Error("quantizer: clip_norm must be a positive number, got " + std::to_string(params_.clip_norm));
  }
  if (params_.max_clients == 0 || params_.max_clients > (1u << 30)) {
    throw Error("quantizer: max_clients must be between 1 and 2^30, got " + std::to_string(params_.max_clients));
  }
  if (params_.bits < 2 || params_.bits > 32) {
    throw Error("quantizer: bits must be between 2 and 32, got " + std::to_string(params_.bits));
  }
  const double n = params_.max_clients;
  const double half_range = std::ldexp(1.0, static_cast<int>(params_.bits) - 1) - 1.0;  // 2^(bits-1) - 1
  scale_ = (half_range - n) / (n * params_.clip_norm);
  if (!(scale_ > 0)) {
    throw Error("quantizer: a sum of " + std::to_string(params_.max_clients) + " clients does not fit in " +
                std::to_string(params_.bits) + " bits; raise bits");
  }
}

std::vector<std::uint32_t> Quantizer::encode(std::span<const float> update, double* clipped_norm) const {
  return encode_with(update, fill_random, clipped_norm);
}

std::vector<std::uint32_t> Quantizer::encode_with_coin_seed(std::span<const float> update,
                                                            std::span<const std::uint8_t> coin_seed,
                                                            double* clipped_norm) const {
  const std::vector<std::uint32_t> words = crypto::expand_mask(coin_seed, 2 * update.size());
  std::size_t used = 0;
  auto from_stream = [&](std::span<std::uint64_t> coins) {
    for (auto& c : coins) {  // encode_with asks for exactly one coin per coordinate, in order
      c = (static_cast<std::uint64_t>(words[used]) << 32) | words[used + 1];
      used += 2;
    }
  };
  return encode_with(update, from_stream, clipped_norm);
}

std::vector<std::uint32_t> Quantizer::encode_with(std::span<const float> update, const CoinSource& fill_coins,
                                                  double* clipped_norm) const {
  const auto [norm, shrink] = model::flat_clip(update, params_.clip_norm, "quantizer");
  if (clipped_norm) *clipped_norm = norm * shrink;
  const double factor = shrink * scale_;
  // Bound after rounding: |q| <= clip*scale + 1, which the scale keeps within int32 even summed n times.
  const double bound = params_.clip_norm * scale_;

  std::vector<std::uint32_t> out(update.size());
  std::vector<std::uint64_t> coins(kCoinBlock);
  const std::uint32_t keep = modulus_mask(params_.bits);
  for (std::size_t start = 0; start < update.size(); start += kCoinBlock) {
    const std::size_t end = std::min(update.size(), start + kCoinBlock);
    fill_coins(std::span<std::uint64_t>(coins).first(end - start));
    for (std::size_t i = start; i < end; ++i) {
      const double y = std::clamp(static_cast<double>(update[i]) * factor, -bound, bound);
      const double lower = std::floor(y);
      // A 53-bit uniform in [0, 1): round up with probability y - lower.
      const double u = static_cast<double>(coins[i - start] >> 11) * 0x1.0p-53;
      const auto q = static_cast<std::int64_t>(lower) + (u < y - lower ? 1 : 0);
      out[i] = static_cast<std::uint32_t>(static_cast<std::int32_t>(q)) & keep;
    }
  }
  return out;
}

std::vector<double> Quantizer::decode_sum(std::span<const std::uint32_t> sum) const {
  std::vector<double> out(sum.size());
  const std::uint32_t keep = modulus_mask(params_.bits);
  const std::int64_t modulus = std::int64_t{1} << params_.bits;
  for (std::size_t i = 0; i < sum.size(); ++i) {
    // The low `bits` bits, read as a two's-complement integer of that width.
    std::int64_t v = sum[i] & keep;
    if (v >= modulus / 2) v -= modulus;
    out[i] = static_cast<double>(v) / scale_;
  }
  return out;
}

}  // namespace sotto::secagg
