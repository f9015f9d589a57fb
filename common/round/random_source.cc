#include "common/round/random_source.h"

#include "common/crypto/random.h"

namespace sotto::round {

void SystemRandom::fill(std::span<std::uint8_t> out) {
  crypto::random_bytes(out);
}

}  // namespace sotto::round
