// RandomSource: where a participant's randomness comes from, injected so that one state machine serves devices,
// simulations and tests. A device uses SystemRandom (OpenSSL's CSPRNG); a simulation uses a stream it can
// reproduce; a test uses a fake whose bytes it knows, so that the outputs are exact.
//
// What a participant draws now: the 32-byte seed of its quantizer's rounding coins, which AES-CTR expands into one
// coin per coordinate (common/secagg/quantizer.h). The SecAgg+ session's keys and shares still come from OpenSSL
// inside secagg::ClientSession.
#pragma once

#include <cstdint>
#include <span>

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

}  // namespace sotto::round
