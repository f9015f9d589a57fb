#include "common/round/random_source.h"

#include "common/crypto/random.h"

namespace sotto::round {

void SystemRandom::fill(std::span<std::uint8_t> out) {
  crypto::random_bytes(out);
}

void SeededRandom::fill(std::span<std::uint8_t> out) {
  std::size_t i = 0;
  while (i < out.size()) {
    std::uint64_t word = stream_.next_word();
    for (int b = 0; b < 8 && i < out.size(); ++b, word >>= 8) out[i++] = static_cast<std::uint8_t>(word);
  }
}

}  // namespace sotto::round
