// Masked-input uploads: words packed at the round's bit width and read back, and malformed uploads refused.
#include "common/secagg/update_vector.h"

#include <catch2/catch.hpp>

#include "common/secagg/messages.h"
#include "common/util/error.h"

using namespace sotto;

namespace {

// The words of a masked input taken from an upload (packed, as the server holds it).
std::vector<std::uint32_t> words_of(const secagg::MaskedInput& input, std::uint32_t bits, std::size_t count) {
  CHECK(input.y.empty());
  return secagg::unpack_words({reinterpret_cast<const std::uint8_t*>(input.packed.data()), input.packed.size()},
                              bits, count);
}

}  // namespace

TEST_CASE("update vector: packed words round-trip at every width and take ceil(m * bits / 8) bytes", "[secagg]") {
  for (std::uint32_t bits : {8u, 13u, 20u, 24u, 31u}) {
    std::vector<std::uint32_t> words(101);
    for (std::size_t i = 0; i < words.size(); ++i) {
      words[i] = static_cast<std::uint32_t>(2654435761u * (i + 1)) & secagg::modulus_mask(bits);
    }
    const auto packed = secagg::pack_words(words, bits);
    CHECK(packed.size() == (101 * bits + 7) / 8);
    CHECK(secagg::unpack_words(packed, bits, words.size()) == words);
    const auto update = secagg::masked_input_parameters(words, bits);
    CHECK(update.total_bytes() == packed.size());
    CHECK(words_of(secagg::masked_input_of(update, bits, words.size()), bits, words.size()) == words);
  }
  const std::vector<std::uint32_t> full = {0xFFFFFFFFu, 0, 7};
  CHECK(words_of(secagg::masked_input_of(secagg::masked_input_parameters(full), 32, 3), 32, 3) == full);
}

TEST_CASE("update vector: a masked input of the wrong width or size is refused with what was expected", "[secagg]") {
  const std::vector<std::uint32_t> words = {1, 2, 3, 4};
  const auto packed24 = secagg::masked_input_parameters(words, 24);
  CHECK_THROWS_WITH(secagg::masked_input_of(packed24, 20, 4), Catch::Contains("10 elements"));
  CHECK_THROWS_WITH(secagg::masked_input_of(packed24, 32, 4), Catch::Contains("int32"));
  CHECK_THROWS_WITH(secagg::masked_input_of(secagg::masked_input_parameters(words), 24, 4), Catch::Contains("uint8"));
  CHECK_THROWS_WITH(secagg::unpack_words(std::vector<std::uint8_t>(5), 24, 4), Catch::Contains("expected 12"));
}
