#include "common/crypto/random.h"

#include <openssl/rand.h>

#include <algorithm>
#include <climits>

#include "common/crypto/openssl_util.h"
#include "common/util/error.h"

namespace sotto::crypto {

void random_bytes(std::span<std::uint8_t> out) {
  // RAND_bytes takes an int length: fill in chunks so that any span size works.
  while (!out.empty()) {
    const std::size_t chunk = std::min<std::size_t>(out.size(), INT_MAX);
    if (RAND_bytes(out.data(), static_cast<int>(chunk)) != 1) internal::throw_openssl_error("RAND_bytes");
    out = out.subspan(chunk);
  }
}

std::uint64_t random_below(std::uint64_t bound) {
  if (bound == 0) throw Error("crypto: random_below needs a positive bound");
  // Accept only draws below the largest multiple of bound that fits in 64 bits, so every residue is equally likely.
  const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % bound + 1) % bound;
  for (;;) {
    std::uint64_t draw = 0;
    random_bytes({reinterpret_cast<std::uint8_t*>(&draw), sizeof draw});
    if (draw <= limit) return draw % bound;
  }
}

}  // namespace sotto::crypto
