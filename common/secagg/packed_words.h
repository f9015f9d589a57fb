// Packed words: how a masked input travels. Words below 2^bits are packed into ceil(count * bits / 8) bytes, word
// i in bits [i * bits, (i + 1) * bits) of a little-endian bit stream — so at 8, 16 and 32 bits they are plain
// little-endian integers. The server adds a packed input straight into its sum (add_packed_words) instead of
// unpacking it first: a held input then takes bits/32 of the memory of its words, it is read once, and every word
// it yields is below 2^bits by construction (nothing to check).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace sotto::secagg {

// Bytes of `count` words packed at `bits`.
std::size_t masked_input_bytes(std::size_t count, std::uint32_t bits);

// The low `bits` bits of each word, packed.
std::vector<std::uint8_t> pack_words(std::span<const std::uint32_t> words, std::uint32_t bits);

// acc[i] += word i of `packed` mod 2^32. Throws sotto::Error unless `packed` is masked_input_bytes(acc.size(),
// bits) long (acc is then unchanged); bits is 1..32.
void add_packed_words(std::span<std::uint32_t> acc, std::span<const std::uint8_t> packed, std::uint32_t bits);

// The `count` words of `packed` (the same size check).
std::vector<std::uint32_t> unpack_words(std::span<const std::uint8_t> packed, std::uint32_t bits, std::size_t count);

}  // namespace sotto::secagg
