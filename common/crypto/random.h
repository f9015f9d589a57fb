// Randomness: every key, seed, nonce and Shamir coefficient in Sotto comes from OpenSSL's CSPRNG (RAND_bytes),
// never from <random>'s engines, which are predictable from their output.
//
// The functions throw sotto::Error if the generator cannot deliver (e.g. it could not be seeded); they never return
// fewer or weaker bytes than asked for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/crypto/secret.h"

namespace sotto::crypto {

// Fills `out` with cryptographically secure random bytes.
void random_bytes(std::span<std::uint8_t> out);

// A fresh random secret of N bytes (a seed or a key).
template <std::size_t N>
SecretArray<N> random_secret() {
  SecretArray<N> secret;
  random_bytes(secret);
  return secret;
}

// A uniform integer in [0, bound), without modulo bias (rejection sampling). bound must be positive.
// For choices the protocol makes at random, e.g. the permutation behind a SecAgg+ neighbour graph.
std::uint64_t random_below(std::uint64_t bound);

}  // namespace sotto::crypto
