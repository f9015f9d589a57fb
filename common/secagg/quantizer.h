// Quantizer: the step between a client's floating-point update and secure aggregation's integers mod 2^32.
//
// Encoding (client): clip the update to L2 norm `clip_norm` (scaling it down if it is longer), multiply by the
// scale, round each coordinate to an integer with unbiased randomized rounding (floor(y) + 1 with probability
// frac(y), so E[q] = y exactly), and wrap to uint32 (two's complement). A device draws the rounding coins from
// OpenSSL's CSPRNG (encode); the simulator draws them from the AES-CTR stream of a seed it derives from the
// experiment's seed (encode_with_coin_seed), so that a simulated secure round is reproducible bit for bit.
// Decoding (aggregator): read the modular sum of the survivors' vectors as signed 32-bit integers and divide by the
// scale.
//
// The scale comes from the cohort size and the modulus 2^bits: after clipping, every coordinate lies in
// [-clip, clip], so one client's integer is at most scale*clip + 1 in magnitude, and the sum of n clients stays
// inside the signed bits-bit range when scale = (2^(bits-1) - 1 - n) / (n * clip). The sum therefore never wraps
// and decodes exactly to the sum of the rounded values. Fewer bits mean smaller uploads and coarser steps. This component is where the Distributed Discrete Gaussian mechanism (scaling, random rotation,
// conditional rounding, modular clipping, discrete Gaussian noise) will replace plain rounding.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace sotto::secagg {

struct QuantizerParams {
  double clip_norm = 1.0;        // L2 bound on one client's update
  std::uint32_t max_clients = 1;  // the cohort size n the scale must tolerate
  std::uint32_t bits = 32;        // the secure sum's modulus is 2^bits
};

class Quantizer {
 public:
  // Throws sotto::Error when clip_norm is not a positive finite number, max_clients is 0 or too large for any
  // useful resolution (more than 2^30), or bits is outside 2..32 or leaves no room for n clients' sum.
  explicit Quantizer(QuantizerParams params);

  double scale() const { return scale_; }
  const QuantizerParams& params() const { return params_; }

  // Clips, scales, rounds and wraps. Throws sotto::Error for a NaN or Inf coordinate. `clipped_norm`, when given,
  // receives the update's L2 norm after clipping.
  std::vector<std::uint32_t> encode(std::span<const float> update, double* clipped_norm = nullptr) const;
  // The same, with coordinate i's coin taken from words 2i and 2i+1 of crypto::expand_mask(coin_seed) (AES-CTR).
  // round::Participant draws the seed from its RandomSource: OpenSSL's CSPRNG on a device, whose coins are then
  // as unpredictable as RAND_bytes', and a reproducible stream in simulations.
  std::vector<std::uint32_t> encode_with_coin_seed(std::span<const float> update,
                                                   std::span<const std::uint8_t> coin_seed,
                                                   double* clipped_norm = nullptr) const;
  // Decodes the modular sum of at most max_clients encoded vectors.
  std::vector<double> decode_sum(std::span<const std::uint32_t> sum) const;

 private:
  // Fills its argument with uniform 64-bit coins for the next coordinates.
  using CoinSource = std::function<void(std::span<std::uint64_t>)>;
  std::vector<std::uint32_t> encode_with(std::span<const float> update, const CoinSource& coins,
                                         double* clipped_norm) const;

  QuantizerParams params_;
  double scale_;
};

}  // namespace sotto::secagg
