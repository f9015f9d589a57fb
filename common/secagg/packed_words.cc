#include "common/secagg/packed_words.h"

#include <bit>
#include <cstring>
#include <string>

#include "common/util/error.h"

namespace sotto::secagg {
namespace {

template <typename Word>
Word load_little_endian(const std::uint8_t* p) {
  Word w;
  std::memcpy(&w, p, sizeof w);
  if constexpr (std::endian::native == std::endian::big && sizeof(Word) == 2) w = __builtin_bswap16(w);
  if constexpr (std::endian::native == std::endian::big && sizeof(Word) == 4) w = __builtin_bswap32(w);
  if constexpr (std::endian::native == std::endian::big && sizeof(Word) == 8) w = __builtin_bswap64(w);
  return w;
}

// Byte-aligned widths: one little-endian load per word, in a loop the compiler vectorises. Each width has its own
// function cloned for AVX2 and the baseline (multiversioned functions cannot be templates), inlining this loop.
template <typename Word>
[[gnu::always_inline]] inline void add_aligned(std::uint32_t* __restrict acc, const std::uint8_t* __restrict packed,
                                               std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) acc[i] += load_little_endian<Word>(packed + i * sizeof(Word));
}

[[gnu::target_clones("avx2", "default")]] void add_8(std::uint32_t* acc, const std::uint8_t* packed, std::size_t n) {
  add_aligned<std::uint8_t>(acc, packed, n);
}
[[gnu::target_clones("avx2", "default")]] void add_16(std::uint32_t* acc, const std::uint8_t* packed, std::size_t n) {
  add_aligned<std::uint16_t>(acc, packed, n);
}
[[gnu::target_clones("avx2", "default")]] void add_32(std::uint32_t* acc, const std::uint8_t* packed, std::size_t n) {
  add_aligned<std::uint32_t>(acc, packed, n);
}

// Any other width: each word is read from the 64-bit window at its first byte (it spans at most 5 bytes), and the
// last words, whose window would run past the end, byte by byte.
void add_unaligned(std::span<std::uint32_t> acc, std::span<const std::uint8_t> packed, std::uint32_t bits) {
  const std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
  std::size_t i = 0;
  for (; i < acc.size(); ++i) {
    const std::size_t bit = i * bits;
    if (bit / 8 + 8 > packed.size()) break;
    acc[i] += static_cast<std::uint32_t>((load_little_endian<std::uint64_t>(packed.data() + bit / 8) >> (bit % 8)) &
                                         mask);
  }
  for (; i < acc.size(); ++i) {
    std::uint64_t window = 0;
    const std::size_t bit = i * bits;
    for (std::size_t b = bit / 8, shift = 0; b < packed.size() && shift < 64; ++b, shift += 8) {
      window |= std::uint64_t{packed[b]} << shift;
    }
    acc[i] += static_cast<std::uint32_t>((window >> (bit % 8)) & mask);
  }
}

void check_bits(std::uint32_t bits) {
  if (bits < 1 || bits > 32) throw Error("packed words: " + std::to_string(bits) + " bits a word, expected 1..32");
}

}  // namespace

std::size_t masked_input_bytes(std::size_t count, std::uint32_t bits) { return (count * bits + 7) / 8; }

std::vector<std::uint8_t> pack_words(std::span<const std::uint32_t> words, std::uint32_t bits) {
  check_bits(bits);
  std::vector<std::uint8_t> out(masked_input_bytes(words.size(), bits), 0);
  const std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
  std::uint64_t pending = 0;  // bits not yet written, lowest first (at most 7 + 32 of them)
  std::uint32_t filled = 0;
  std::size_t at = 0;
  for (std::uint32_t w : words) {
    pending |= (w & mask) << filled;
    for (filled += bits; filled >= 8; filled -= 8, pending >>= 8) out[at++] = static_cast<std::uint8_t>(pending);
  }
  if (filled > 0) out[at] = static_cast<std::uint8_t>(pending);
  return out;
}

void add_packed_words(std::span<std::uint32_t> acc, std::span<const std::uint8_t> packed, std::uint32_t bits) {
  check_bits(bits);
  if (packed.size() != masked_input_bytes(acc.size(), bits)) {
    throw Error("packed words: " + std::to_string(packed.size()) + " bytes, expected " +
                std::to_string(masked_input_bytes(acc.size(), bits)) + " for " + std::to_string(acc.size()) +
                " words of " + std::to_string(bits) + " bits");
  }
  switch (bits) {
    case 8: return add_8(acc.data(), packed.data(), acc.size());
    case 16: return add_16(acc.data(), packed.data(), acc.size());
    case 32: return add_32(acc.data(), packed.data(), acc.size());
    default: return add_unaligned(acc, packed, bits);
  }
}

std::vector<std::uint32_t> unpack_words(std::span<const std::uint8_t> packed, std::uint32_t bits, std::size_t count) {
  std::vector<std::uint32_t> out(count, 0);
  add_packed_words(out, packed, bits);
  return out;
}

}  // namespace sotto::secagg
