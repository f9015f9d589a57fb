// Packed words against a bit-by-bit reference of the layout: every width 1..32, lengths that end inside the last
// 64-bit window, additions mod 2^32, and bad sizes refused without touching the sum.
#include "common/secagg/packed_words.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "common/util/error.h"

namespace sotto::secagg {
namespace {

// The layout spelled out one bit at a time: word i's bit b is stream bit i * bits + b, stream bit j is bit j % 8
// of byte j / 8.
std::vector<std::uint8_t> reference_pack(const std::vector<std::uint32_t>& words, std::uint32_t bits) {
  std::vector<std::uint8_t> out((words.size() * bits + 7) / 8, 0);
  std::size_t bit = 0;
  for (std::uint32_t w : words) {
    for (std::uint32_t b = 0; b < bits; ++b, ++bit) {
      if ((w >> b) & 1u) out[bit / 8] |= static_cast<std::uint8_t>(1u << (bit % 8));
    }
  }
  return out;
}

std::vector<std::uint32_t> words_below(std::uint32_t bits, std::size_t count) {
  const std::uint32_t keep = bits >= 32 ? 0xFFFFFFFFu : (std::uint32_t{1} << bits) - 1;
  std::vector<std::uint32_t> words(count);
  for (std::size_t i = 0; i < count; ++i) words[i] = (2654435761u * static_cast<std::uint32_t>(i + 1)) & keep;
  if (count > 0) words[0] = keep;  // all ones
  return words;
}

}  // namespace

TEST_CASE("packed words follow the little-endian bit stream layout at every width and length", "[secagg]") {
  for (std::uint32_t bits = 1; bits <= 32; ++bits) {
    for (std::size_t count : {0u, 1u, 2u, 7u, 13u, 64u, 1001u}) {
      CAPTURE(bits, count);
      const auto words = words_below(bits, count);
      const auto packed = pack_words(words, bits);
      REQUIRE(packed == reference_pack(words, bits));
      CHECK(packed.size() == masked_input_bytes(count, bits));
      CHECK(unpack_words(packed, bits, count) == words);
    }
  }
}

TEST_CASE("packing keeps only the low bits of each word", "[secagg]") {
  const std::vector<std::uint32_t> words{0xFFFFFFFFu, 0x12345u};
  CHECK(unpack_words(pack_words(words, 12), 12, 2) == std::vector<std::uint32_t>{0xFFFu, 0x345u});
}

TEST_CASE("adding packed words into a sum wraps mod 2^32 and equals adding the unpacked words", "[secagg]") {
  for (std::uint32_t bits : {8u, 12u, 16u, 20u, 31u, 32u}) {
    CAPTURE(bits);
    const auto words = words_below(bits, 517);
    std::vector<std::uint32_t> sum(words.size(), 0xFFFFFFF0u), expected = sum;
    for (std::size_t i = 0; i < words.size(); ++i) expected[i] += words[i];
    add_packed_words(sum, pack_words(words, bits), bits);
    CHECK(sum == expected);
  }
}

TEST_CASE("packed words of the wrong size or width are refused and the sum is left as it was", "[secagg]") {
  std::vector<std::uint32_t> sum(4, 7);
  CHECK_THROWS_WITH(add_packed_words(sum, std::vector<std::uint8_t>(5), 24), Catch::Contains("expected 12"));
  CHECK_THROWS_WITH(add_packed_words(sum, std::vector<std::uint8_t>(0), 0), Catch::Contains("expected 1..32"));
  CHECK_THROWS_WITH(pack_words(sum, 33), Catch::Contains("33 bits"));
  CHECK(sum == std::vector<std::uint32_t>(4, 7));
}

}  // namespace sotto::secagg
