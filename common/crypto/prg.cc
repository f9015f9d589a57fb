#include "common/crypto/prg.h"

#include <algorithm>
#include <array>
#include <bit>
#include <string>

#include "common/crypto/hkdf.h"
#include "common/crypto/openssl_util.h"
#include "common/crypto/secret.h"
#include "common/util/error.h"

namespace sotto::crypto {
namespace {

// 8 KiB of keystream at a time: it stays in L1 between the AES pass and the add.
constexpr std::size_t kBlockWords = 2048;
// The stretch of acc that every mask of a group passes over before the next: 16 KiB, which stays in L1 beside
// the 8 KiB keystream block and its zeros.
constexpr std::size_t kChunkWords = 4096;
// CTR mode's keystream is the encryption of zeros.
alignas(64) constexpr std::array<std::uint8_t, kBlockWords * 4> kZeros{};

struct alignas(64) KeystreamBlock {
  std::array<std::uint32_t, kBlockWords> words;
  ~KeystreamBlock() { OPENSSL_cleanse(words.data(), sizeof words); }
};

// acc[i] +/-= keystream word i: restrict-qualified so the loop vectorises; cloned for AVX2 and the baseline.
[[gnu::target_clones("avx2", "default")]] void add_block(std::uint32_t* __restrict acc,
                                                         const std::uint32_t* __restrict keystream, std::size_t words,
                                                         bool subtract) {
  if (subtract) {
    for (std::size_t i = 0; i < words; ++i) acc[i] -= keystream[i];
  } else {
    for (std::size_t i = 0; i < words; ++i) acc[i] += keystream[i];
  }
}

void to_little_endian_words(std::uint32_t* words, std::size_t count) {
  if constexpr (std::endian::native == std::endian::big) {
    for (std::size_t i = 0; i < count; ++i) words[i] = __builtin_bswap32(words[i]);
  }
}

void check_seed(std::span<const std::uint8_t> seed) {
  if (seed.size() != 16 && seed.size() != 32) {
    throw Error("crypto: a PRG seed is 16 or 32 bytes, got " + std::to_string(seed.size()));
  }
}

// The keystream of one seed, positioned at word 0.
internal::CipherCtx open_keystream(std::span<const std::uint8_t> seed) {
  SecretArray<32> key_iv;
  hkdf_sha256(seed, {}, internal::bytes_of(kPrgInfo), key_iv);
  internal::CipherCtx ctx = internal::new_cipher_ctx();
  if (EVP_EncryptInit_ex2(ctx.get(), internal::aes_128_ctr(), key_iv.data(), key_iv.data() + 16, nullptr) != 1) {
    internal::throw_openssl_error("AES-128-CTR init");
  }
  return ctx;
}

// Adds the next acc.size() words of the keystream into acc.
void apply_keystream(EVP_CIPHER_CTX* ctx, std::span<std::uint32_t> acc, bool subtract, KeystreamBlock& block) {
  for (std::size_t done = 0; done < acc.size(); done += kBlockWords) {
    const std::size_t words = std::min(kBlockWords, acc.size() - done);
    int length = 0;
    auto* out = reinterpret_cast<std::uint8_t*>(block.words.data());
    if (EVP_EncryptUpdate(ctx, out, &length, kZeros.data(), static_cast<int>(words * 4)) != 1) {
      internal::throw_openssl_error("AES-128-CTR keystream");
    }
    to_little_endian_words(block.words.data(), words);
    add_block(acc.data() + done, block.words.data(), words, subtract);
  }
}

void add_group(std::span<std::uint32_t> acc, std::span<const MaskTerm> group, KeystreamBlock& block) {
  std::vector<internal::CipherCtx> streams;
  streams.reserve(group.size());
  for (const MaskTerm& term : group) streams.push_back(open_keystream(term.seed));
  for (std::size_t at = 0; at < acc.size(); at += kChunkWords) {
    const auto chunk = acc.subspan(at, std::min(kChunkWords, acc.size() - at));
    for (std::size_t t = 0; t < group.size(); ++t) {
      apply_keystream(streams[t].get(), chunk, group[t].sign == MaskSign::kSubtract, block);
    }
  }
}

}  // namespace

void add_masks(std::span<std::uint32_t> acc, std::span<const MaskTerm> terms) {
  for (const MaskTerm& term : terms) check_seed(term.seed);
  KeystreamBlock block;
  for (std::size_t at = 0; at < terms.size(); at += kMaskGroup) {
    add_group(acc, terms.subspan(at, std::min(kMaskGroup, terms.size() - at)), block);
  }
}

void add_mask(std::span<std::uint32_t> acc, std::span<const std::uint8_t> seed, MaskSign sign) {
  const MaskTerm term{seed, sign};
  add_masks(acc, std::span(&term, 1));
}

std::vector<std::uint32_t> expand_mask(std::span<const std::uint8_t> seed, std::size_t words) {
  std::vector<std::uint32_t> mask(words, 0);
  add_mask(mask, seed, MaskSign::kAdd);
  return mask;
}

}  // namespace sotto::crypto
