// RandomStream: a fast stream of uniform 64-bit words for the DP noise samplers — the AES-128-CTR keystream over
// zeros under a key and initial counter block drawn from OpenSSL's RAND_bytes (or, for reproducible simulations
// and tests, given as a 32-byte seed). The key never leaves the object and is wiped with it. Not thread-safe: one
// stream per thread. Also uniform integers below a bound, by rejection, so that no value is favoured.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace sotto::crypto {

class RandomStream {
 public:
  // Keyed from RAND_bytes.
  RandomStream();
  // Keyed from `seed` (key = first 16 bytes, counter block = last 16): the same words every time.
  explicit RandomStream(std::span<const std::uint8_t, 32> seed);
  ~RandomStream();
  RandomStream(const RandomStream&) = delete;
  RandomStream& operator=(const RandomStream&) = delete;

  std::uint64_t next_word();
  // Uniform in [0, bound), bound > 0.
  std::uint64_t below(std::uint64_t bound);
  unsigned __int128 below(unsigned __int128 bound);
  // One fair bit, 64 to a word.
  bool coin() {
    if (bits_left_ == 0) {
      bits_ = next_word();
      bits_left_ = 64;
    }
    --bits_left_;
    const bool bit = (bits_ & 1) != 0;
    bits_ >>= 1;
    return bit;
  }

 private:
  void refill();

  std::array<std::uint8_t, 32> key_iv_{};
  std::array<std::uint64_t, 512> block_{};  // 4 KiB of keystream at a time
  std::size_t next_ = block_.size();
  std::uint64_t blocks_done_ = 0;
  std::uint64_t bits_ = 0;  // coin()'s unused bits
  int bits_left_ = 0;
};

}  // namespace sotto::crypto
