#include "common/crypto/prg.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <string>

#include "common/crypto/hkdf.h"
#include "common/crypto/openssl_util.h"
#include "common/crypto/secret.h"
#include "common/util/error.h"

namespace sotto::crypto {
namespace {

// 8 KiB of keystream at a time: small enough to stay in L1 between the AES pass and the add pass, large enough
// to amortize each EVP call. (Measured with bench/prg_bench.cc: 64 KiB blocks were up to 15% slower.)
constexpr std::size_t kBlockWords = 2048;
constexpr std::size_t kBlockBytes = kBlockWords * 4;
// CTR mode's keystream is the encryption of zeros.
constexpr std::array<std::uint8_t, kBlockBytes> kZeros{};

std::uint32_t load_little_endian(const std::uint8_t* p) {
  std::uint32_t word;
  std::memcpy(&word, p, sizeof word);
  if constexpr (std::endian::native == std::endian::big) {
    word = (word >> 24) | ((word >> 8) & 0xff00u) | ((word << 8) & 0xff0000u) | (word << 24);
  }
  return word;
}

}  // namespace

void add_mask(std::span<std::uint32_t> acc, std::span<const std::uint8_t> seed, MaskSign sign) {
  if (seed.size() != 16 && seed.size() != 32) {
    throw Error("crypto: a PRG seed is 16 or 32 bytes, got " + std::to_string(seed.size()));
  }
  SecretArray<32> key_iv;
  hkdf_sha256(seed, {}, internal::bytes_of(kPrgInfo), key_iv);
  const internal::CipherCtx ctx = internal::new_cipher_ctx();
  if (EVP_EncryptInit_ex2(ctx.get(), internal::aes_128_ctr(), key_iv.data(), key_iv.data() + 16, nullptr) != 1) {
    internal::throw_openssl_error("AES-128-CTR init");
  }

  SecretBytes keystream(std::min(acc.size(), kBlockWords) * 4);
  while (!acc.empty()) {
    const std::size_t words = std::min(acc.size(), kBlockWords);
    int length = 0;
    if (EVP_EncryptUpdate(ctx.get(), keystream.data(), &length, kZeros.data(), static_cast<int>(words * 4)) != 1) {
      internal::throw_openssl_error("AES-128-CTR keystream");
    }
    const std::uint8_t* k = keystream.data();
    if (sign == MaskSign::kAdd) {
      for (std::size_t i = 0; i < words; ++i) acc[i] += load_little_endian(k + 4 * i);
    } else {
      for (std::size_t i = 0; i < words; ++i) acc[i] -= load_little_endian(k + 4 * i);
    }
    acc = acc.subspan(words);
  }
}

std::vector<std::uint32_t> expand_mask(std::span<const std::uint8_t> seed, std::size_t words) {
  std::vector<std::uint32_t> mask(words, 0);
  add_mask(mask, seed, MaskSign::kAdd);
  return mask;
}

}  // namespace sotto::crypto
