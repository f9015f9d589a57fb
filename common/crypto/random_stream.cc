#include "common/crypto/random_stream.h"

#include <openssl/crypto.h>

#include <cstring>

#include "common/crypto/openssl_util.h"
#include "common/crypto/random.h"

namespace sotto::crypto {

RandomStream::RandomStream() {
  random_bytes(key_iv_);
}

RandomStream::RandomStream(std::span<const std::uint8_t, 32> seed) {
  std::memcpy(key_iv_.data(), seed.data(), key_iv_.size());
}

RandomStream::~RandomStream() {
  OPENSSL_cleanse(key_iv_.data(), key_iv_.size());
  OPENSSL_cleanse(block_.data(), sizeof block_);
}

// The next 4 KiB of keystream: the counter block advanced by the blocks already produced (256 AES blocks each).
void RandomStream::refill() {
  std::array<std::uint8_t, 16> counter{};
  std::memcpy(counter.data(), key_iv_.data() + 16, 16);
  std::uint64_t add = blocks_done_ * (sizeof block_ / 16);
  for (int i = 15; i >= 0 && add != 0; --i) {  // big-endian addition into the 128-bit counter
    const unsigned sum = counter[static_cast<std::size_t>(i)] + static_cast<unsigned>(add & 0xFF);
    counter[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(sum);
    add = (add >> 8) + (sum >> 8);
  }
  auto ctx = internal::new_cipher_ctx();
  if (EVP_EncryptInit_ex2(ctx.get(), internal::aes_128_ctr(), key_iv_.data(), counter.data(), nullptr) != 1) {
    internal::throw_openssl_error("random stream: AES-128-CTR init");
  }
  std::memset(block_.data(), 0, sizeof block_);
  auto* bytes = reinterpret_cast<unsigned char*>(block_.data());
  int length = 0;
  if (EVP_EncryptUpdate(ctx.get(), bytes, &length, bytes, static_cast<int>(sizeof block_)) != 1) {
    internal::throw_openssl_error("random stream: AES-128-CTR");
  }
  ++blocks_done_;
  next_ = 0;
}

std::uint64_t RandomStream::next_word() {
  if (next_ == block_.size()) refill();
  return block_[next_++];
}

// Lemire's multiply-and-shift ("Fast random integer generation in an interval", 2019): the high word of w·bound
// is uniform once the few w whose low word falls below 2^64 mod bound are rejected; the division that computes
// that threshold runs only when the low word is small, which is rare.
std::uint64_t RandomStream::below(std::uint64_t bound) {
  unsigned __int128 m = static_cast<unsigned __int128>(next_word()) * bound;
  auto low = static_cast<std::uint64_t>(m);
  if (low < bound) {
    const std::uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
    while (low < threshold) {
      m = static_cast<unsigned __int128>(next_word()) * bound;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::uint64_t>(m >> 64);
}

unsigned __int128 RandomStream::below(unsigned __int128 bound) {
  if (bound <= UINT64_MAX) return below(static_cast<std::uint64_t>(bound));
  const unsigned __int128 max = ~static_cast<unsigned __int128>(0);
  const unsigned __int128 limit = max - max % bound;
  for (;;) {
    const unsigned __int128 w = static_cast<unsigned __int128>(next_word()) << 64 | next_word();
    if (w < limit) return w % bound;
  }
}

}  // namespace sotto::crypto
