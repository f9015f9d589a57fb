// The mask PRG of secure aggregation: a seed (16 or 32 bytes) expands to a stream of uint32 words that masks a
// quantized update mod 2^32. Client u adds PRG(b_u) and, for each neighbour v, +PRG(s_uv) if u < v else
// -PRG(s_uv); the aggregator later removes them by the same expansion.
//
// Construction: (key || iv) = HKDF-SHA256(ikm = seed, salt = empty, info = kPrgInfo, 32 bytes); the AES-128 key is
// the first 16 bytes, the initial 128-bit counter block the last 16; the keystream is AES-128-CTR(key, iv) over
// zeros (OpenSSL increments the whole block, big-endian); word i is keystream bytes 4i..4i+3, little-endian.
// Invariants: the same seed always gives the same words on every platform; add_mask(acc, s, kAdd) followed by
// add_mask(acc, s, kSubtract) restores acc; add_mask never allocates more than one 8 KiB block, whatever acc's
// length, and wipes that block and the derived key when it returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace sotto::crypto {

inline constexpr std::string_view kPrgInfo = "sotto-secagg-prg-v1";

enum class MaskSign { kAdd, kSubtract };

// acc[i] = acc[i] +/- word_i(seed) mod 2^32 for every i. The seed must be 16 or 32 bytes (sotto::Error otherwise).
void add_mask(std::span<std::uint32_t> acc, std::span<const std::uint8_t> seed, MaskSign sign);

// The first `words` PRG words of `seed`.
std::vector<std::uint32_t> expand_mask(std::span<const std::uint8_t> seed, std::size_t words);

}  // namespace sotto::crypto
