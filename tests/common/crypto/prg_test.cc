#include "common/crypto/prg.h"

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <numeric>
#include <vector>

#include "common/crypto/random.h"
#include "common/util/error.h"
#include "tests/common/crypto/test_bytes.h"

namespace sotto::crypto {
namespace {

// Long enough to cross the implementation's keystream blocks (8 KiB) and chunks (16 KiB) many times and to end
// mid-block.
constexpr std::size_t kWordsAcrossBlocks = 2 * 16384 + 123;

// The PRG spelled out with OpenSSL's other APIs: HKDF through EVP_PKEY_HKDF, AES-128-CTR through
// EVP_aes_128_ctr() over one zero buffer of the whole length, words assembled byte by byte.
std::vector<std::uint32_t> reference_prg(std::span<const std::uint8_t> seed, std::size_t words) {
  std::array<std::uint8_t, 32> key_iv{};
  {
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> pctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr),
                                                                     &EVP_PKEY_CTX_free);
    REQUIRE(pctx);
    const std::string info = "sotto-secagg-prg-v1";
    std::size_t length = key_iv.size();
    REQUIRE(EVP_PKEY_derive_init(pctx.get()) == 1);
    REQUIRE(EVP_PKEY_CTX_set_hkdf_md(pctx.get(), EVP_sha256()) == 1);
    REQUIRE(EVP_PKEY_CTX_set1_hkdf_key(pctx.get(), seed.data(), static_cast<int>(seed.size())) == 1);
    REQUIRE(EVP_PKEY_CTX_add1_hkdf_info(pctx.get(), reinterpret_cast<const unsigned char*>(info.data()),
                                        static_cast<int>(info.size())) == 1);
    REQUIRE(EVP_PKEY_derive(pctx.get(), key_iv.data(), &length) == 1);
    REQUIRE(length == 32);
  }
  std::vector<std::uint8_t> zeros(words * 4, 0), keystream(words * 4);
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int length = 0;
  REQUIRE(EVP_EncryptInit_ex(ctx.get(), EVP_aes_128_ctr(), nullptr, key_iv.data(), key_iv.data() + 16) == 1);
  REQUIRE(EVP_EncryptUpdate(ctx.get(), keystream.data(), &length, zeros.data(), static_cast<int>(zeros.size())) == 1);
  REQUIRE(static_cast<std::size_t>(length) == zeros.size());
  std::vector<std::uint32_t> out(words);
  for (std::size_t i = 0; i < words; ++i) {
    const std::uint8_t* b = keystream.data() + 4 * i;
    out[i] = std::uint32_t{b[0]} | std::uint32_t{b[1]} << 8 | std::uint32_t{b[2]} << 16 | std::uint32_t{b[3]} << 24;
  }
  return out;
}

std::vector<std::uint8_t> counting_seed(std::size_t n) {
  std::vector<std::uint8_t> seed(n);
  std::iota(seed.begin(), seed.end(), std::uint8_t{0});
  return seed;
}

}  // namespace

TEST_CASE("the PRG matches an independent HKDF and AES-128-CTR computation", "[crypto][prg]") {
  for (std::size_t seed_bytes : {16u, 32u}) {
    const SecretBytes seed = [&] {
      SecretBytes s(seed_bytes);
      random_bytes(s);
      return s;
    }();
    CAPTURE(seed_bytes);
    CHECK(expand_mask(seed, kWordsAcrossBlocks) == reference_prg(seed, kWordsAcrossBlocks));
    CHECK(expand_mask(seed, 1) == reference_prg(seed, 1));
  }
}

TEST_CASE("the PRG's first words for fixed seeds are pinned", "[crypto][prg]") {
  // Computed with the openssl command line: `openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:<seed>
  // -kdfopt info:sotto-secagg-prg-v1 HKDF`, then `openssl enc -aes-128-ctr -K <first 16> -iv <last 16>` over zeros.
  // A change here changes every mask on the wire: it needs a new kPrgInfo version.
  CHECK(expand_mask(counting_seed(32), 4) ==
        std::vector<std::uint32_t>{0x34cb7846u, 0x856ade04u, 0xa2bb1886u, 0xbe125a50u});
  CHECK(expand_mask(counting_seed(16), 2) == std::vector<std::uint32_t>{0x150674bbu, 0xbb75a065u});
}

TEST_CASE("adding a mask then subtracting it restores the input", "[crypto][prg]") {
  std::vector<std::uint32_t> input(kWordsAcrossBlocks);
  random_bytes({reinterpret_cast<std::uint8_t*>(input.data()), input.size() * 4});
  const auto seed = random_secret<32>();
  auto acc = input;
  add_mask(acc, seed, MaskSign::kAdd);
  CHECK(acc != input);
  add_mask(acc, seed, MaskSign::kSubtract);
  CHECK(acc == input);
}

TEST_CASE("add_mask adds the PRG words mod 2^32 and subtracting alone gives the negated words", "[crypto][prg]") {
  const auto seed = random_secret<16>();
  const auto mask = expand_mask(seed, kWordsAcrossBlocks);
  std::vector<std::uint32_t> acc(kWordsAcrossBlocks);
  for (std::size_t i = 0; i < acc.size(); ++i) acc[i] = static_cast<std::uint32_t>(0xfffffff0u + i);
  const auto input = acc;
  add_mask(acc, seed, MaskSign::kAdd);
  std::vector<std::uint32_t> negated(kWordsAcrossBlocks, 0);
  add_mask(negated, seed, MaskSign::kSubtract);
  for (std::size_t i = 0; i < acc.size(); ++i) {
    REQUIRE(acc[i] == static_cast<std::uint32_t>(input[i] + mask[i]));
    REQUIRE(negated[i] == static_cast<std::uint32_t>(0u - mask[i]));
  }
}

TEST_CASE("pairwise masks with opposite signs cancel in the sum", "[crypto][prg]") {
  // Client u < v adds PRG(s_uv), v subtracts it: the aggregate of the two masked zero vectors is zero.
  const auto s_uv = random_secret<32>();
  std::vector<std::uint32_t> u(1000, 0), v(1000, 0);
  add_mask(u, s_uv, MaskSign::kAdd);
  add_mask(v, s_uv, MaskSign::kSubtract);
  for (std::size_t i = 0; i < u.size(); ++i) REQUIRE(static_cast<std::uint32_t>(u[i] + v[i]) == 0u);
}

TEST_CASE("the PRG output of different seeds differs", "[crypto][prg]") {
  auto seed_a = counting_seed(32), seed_b = counting_seed(32);
  seed_b[31] ^= 1;
  CHECK(expand_mask(seed_a, 64) != expand_mask(seed_b, 64));
  // A 16-byte seed is not the prefix of a 32-byte one.
  CHECK(expand_mask(std::span(seed_a).first(16), 64) != expand_mask(seed_a, 64));
}

TEST_CASE("the PRG refuses seeds that are not 16 or 32 bytes", "[crypto][prg]") {
  std::vector<std::uint32_t> acc(8, 0);
  for (std::size_t n : {0u, 15u, 17u, 24u, 31u, 33u, 64u}) {
    CAPTURE(n);
    CHECK_THROWS_AS(add_mask(acc, counting_seed(n), MaskSign::kAdd), Error);
  }
  CHECK(expand_mask(counting_seed(32), 0).empty());
}

TEST_CASE("the PRG output added to an all-zero vector looks uniform over byte values", "[crypto][prg]") {
  // 4 MiB of output in 256 buckets: chi-square with 255 degrees of freedom has mean 255 and sd 22.6. The bounds are
  // 4.6 sd below and 6.4 sd above: a good PRG falls outside with probability about 1e-7 (Wilson-Hilferty), while a
  // constant stream (chi-square ~ 10^9) or a counter-like, too-even stream (~ 0) always does.
  std::vector<std::uint32_t> acc(1u << 20, 0);
  add_mask(acc, random_secret<32>(), MaskSign::kAdd);
  std::array<double, 256> counts{};
  for (std::uint32_t w : acc) {
    for (int b = 0; b < 4; ++b) ++counts[(w >> (8 * b)) & 0xff];
  }
  const double expected = acc.size() * 4.0 / 256.0;
  double chi_square = 0;
  for (double c : counts) chi_square += (c - expected) * (c - expected) / expected;
  CAPTURE(chi_square);
  CHECK(chi_square > 150.0);
  CHECK(chi_square < 400.0);
}


TEST_CASE("add_masks over more than one group of masks equals the masks added one by one", "[crypto][prg]") {
  // More terms than kMaskGroup (two groups), each with its own sign, over a length that ends mid-chunk.
  const std::size_t terms_count = kMaskGroup + 7;
  std::vector<SecretArray<32>> seeds(terms_count);
  std::vector<MaskTerm> terms;
  for (std::size_t t = 0; t < terms_count; ++t) {
    random_bytes(seeds[t]);
    terms.push_back({seeds[t], t % 3 == 0 ? MaskSign::kSubtract : MaskSign::kAdd});
  }
  std::vector<std::uint32_t> one_by_one(kWordsAcrossBlocks), together(kWordsAcrossBlocks);
  std::iota(one_by_one.begin(), one_by_one.end(), 7u);
  together = one_by_one;
  for (std::size_t t = 0; t < terms_count; ++t) {
    const auto words = reference_prg(seeds[t], kWordsAcrossBlocks);
    for (std::size_t i = 0; i < words.size(); ++i) {
      one_by_one[i] += terms[t].sign == MaskSign::kAdd ? words[i] : 0u - words[i];
    }
  }
  add_masks(together, terms);
  CHECK(together == one_by_one);
}

TEST_CASE("add_masks checks every seed before it changes the vector", "[crypto][prg]") {
  const auto good = counting_seed(32), bad = counting_seed(20);
  const std::vector<MaskTerm> terms{{good, MaskSign::kAdd}, {bad, MaskSign::kAdd}};
  std::vector<std::uint32_t> acc(100, 5);
  CHECK_THROWS_WITH(add_masks(acc, terms), Catch::Contains("16 or 32 bytes, got 20"));
  CHECK(acc == std::vector<std::uint32_t>(100, 5));
  std::vector<std::uint32_t> untouched(3, 9);
  add_masks(untouched, {});
  CHECK(untouched == std::vector<std::uint32_t>(3, 9));
}

}  // namespace sotto::crypto
