// RandomSource: where a participant's randomness comes from, injected so that one state machine serves devices,
// simulations and tests. A device uses SystemRandom (OpenSSL's CSPRNG); a simulation uses a stream it can
// reproduce; a test uses a fake whose bytes it knows, so that the outputs are exact.
//
// What a participant draws, in this order: the 32-byte seed of its quantizer's rounding coins, which AES-CTR expands
// into one coin per coordinate (common/secagg/quantizer.h); then its SecAgg+ session's two X25519 private keys and
// its self-mask seed (32 bytes each). The Shamir polynomials' coefficients come from OpenSSL inside
// secagg::ClientSession; they do not change what the participant sends.
#pragma once

#include <cstdint>
#include <span>

#include "common/crypto/random_stream.h"

namespace sotto::round {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // Fills `out` with bytes that must be unpredictable to everyone else on a device.
  virtual void fill(std::span<std::uint8_t> out) = 0;
};

// OpenSSL's RAND_bytes; throws sotto::Error when it cannot deliver.
class SystemRandom final : public RandomSource {
 public:
  void fill(std::span<std::uint8_t> out) override;
};

// A reproducible stream from a 32-byte seed (crypto::RandomStream): the same seed, the same bytes. For simulations;
// a device's secrets must never come from a seed anyone else knows.
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(std::span<const std::uint8_t, 32> seed) : stream_(seed) {}
  void fill(std::span<std::uint8_t> out) override;

 private:
  crypto::RandomStream stream_;
};

}  // namespace sotto::round
