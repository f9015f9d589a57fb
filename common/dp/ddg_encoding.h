// What a client does to its update under the Distributed Discrete Gaussian mechanism, and what the aggregator does
// to the securely summed result (Kairouz, Liu, Steinke, ICML 2021):
//   client:     clip to C -> rotate (randomized Hadamard, the round's public seed) -> multiply by the scale ->
//               conditional randomized rounding (each coordinate up with probability its fractional part; the whole
//               vector re-drawn until its L2 norm is within DdgParameters::l2_bound) -> add its discrete Gaussian
//               share N_Z(0, local_stddev^2) to every coordinate -> wrap mod 2^bits (modular clipping)
//   aggregator: the sum mod 2^bits -> signed values in [-2^(bits-1), 2^(bits-1)) -> divide by the scale ->
//               unrotate -> the (noisy) sum of the clipped updates.
// Randomness (rounding and noise) comes from a crypto::RandomStream; the rotation's signs from the public seed.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/crypto/random_stream.h"
#include "common/dp/ddg_parameters.h"
#include "common/dp/randomized_rotation.h"

namespace sotto::dp {

// Rounds each coordinate of x up with probability its fractional part, re-drawing the whole vector until its L2
// norm is at most `bound`. Throws sotto::Error after 1,000 draws (a bound below what x can reach).
std::vector<std::int64_t> conditional_round(std::span<const double> x, double bound, crypto::RandomStream& random);

// Clip to C, rotate, scale and round conditionally: the update on the integer grid (length p.padded), no noise.
std::vector<std::int64_t> ddg_round(std::span<const float> update, const DdgParameters& p, const RotationSeed& seed,
                                    crypto::RandomStream& random);

// The client's input to secure aggregation (words below 2^bits, length p.padded). `with_noise` false leaves out the
// noise share (central mode, where the aggregator adds all of it).
std::vector<std::uint32_t> ddg_encode(std::span<const float> update, const DdgParameters& p, const RotationSeed& seed,
                                      crypto::RandomStream& random, bool with_noise = true);

// Adds N_Z(0, stddev^2) to every word, mod 2^bits (central mode's noise on the sum).
void add_discrete_gaussian_mod(std::span<std::uint32_t> words, double stddev, std::uint32_t bits,
                               crypto::RandomStream& random);

// Adds N_Z(0, stddev^2) to every value (no modulus: a plain round's noise).
void add_discrete_gaussian(std::span<std::int64_t> values, double stddev, crypto::RandomStream& random);

// Integers on the grid (a sum, noise included) back to the update's units: divide by the scale, unrotate.
std::vector<double> ddg_decode_integers(std::span<const std::int64_t> values, const DdgParameters& p,
                                        const RotationSeed& seed);

// Local DP without a secure sum: the update clipped, rounded on the grid, noised with the whole noise
// (p.local_stddev) and decoded by the device itself, which sends the result as its plain update. Decoding is
// post-processing: the guarantee is the encoding's, and without a modulus nothing wraps.
std::vector<double> ddg_noised_update(std::span<const float> update, const DdgParameters& p,
                                      const RotationSeed& seed, crypto::RandomStream& random);

// Words mod 2^bits as the signed values in [-2^(bits-1), 2^(bits-1)) they stand for.
std::vector<std::int64_t> signed_values(std::span<const std::uint32_t> words, std::uint32_t bits);

// The sum of the clipped updates (length p.dimension, noise included) from the sum mod 2^bits of the encodings.
std::vector<double> ddg_decode_sum(std::span<const std::uint32_t> sum, const DdgParameters& p,
                                   const RotationSeed& seed);

}  // namespace sotto::dp
