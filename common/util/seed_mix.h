// mix64: the SplitMix64 finaliser (Steele, Lea and Flood, 2014), which spreads related seeds — (seed, round),
// (seed, client) — into independent-looking 64-bit values. For reproducible training seeds, cohort sampling and
// simulated dropouts only: it is not secret and never feeds keys, masks, shares or noise.
#pragma once

#include <cstdint>

namespace sotto::util {

constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace sotto::util
