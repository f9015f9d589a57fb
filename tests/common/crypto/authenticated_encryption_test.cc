#include "common/crypto/authenticated_encryption.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/crypto/random.h"
#include "tests/common/crypto/test_bytes.h"

namespace sotto::crypto {
namespace {

std::vector<std::uint8_t> share_like_plaintext() {
  std::vector<std::uint8_t> p(74);
  random_bytes(p);
  return p;
}

bool opens(std::span<const std::uint8_t, kAeadKeyBytes> key, std::span<const std::uint8_t> ad,
           std::span<const std::uint8_t> sealed) {
  return open(key, ad, sealed).has_value();
}

}  // namespace

TEST_CASE("AES-GCM opens what it sealed under the same key and associated data", "[crypto][aead]") {
  const auto key = random_secret<kAeadKeyBytes>();
  const auto ad = share_associated_data(7, 3, 9);
  const auto plaintext = share_like_plaintext();
  const auto sealed = seal(key, ad, plaintext);
  REQUIRE(sealed.size() == plaintext.size() + kAeadOverheadBytes);
  const auto opened = open(key, ad, sealed);
  REQUIRE(opened);
  CHECK(std::vector<std::uint8_t>(opened->begin(), opened->end()) == plaintext);
  // The ciphertext is not the plaintext in the clear.
  CHECK(std::search(sealed.begin(), sealed.end(), plaintext.begin(), plaintext.begin() + 16) == sealed.end());

  const auto empty = seal(key, ad, {});
  REQUIRE(empty.size() == kAeadOverheadBytes);
  const auto opened_empty = open(key, ad, empty);
  REQUIRE(opened_empty);
  CHECK(opened_empty->empty());
}

TEST_CASE("AES-GCM seals the same plaintext under fresh random nonces", "[crypto][aead]") {
  const auto key = random_secret<kAeadKeyBytes>();
  const auto ad = share_associated_data(1, 1, 2);
  const auto plaintext = share_like_plaintext();
  std::set<std::string> nonces, ciphertexts;
  for (int i = 0; i < 16; ++i) {
    const auto sealed = seal(key, ad, plaintext);
    nonces.insert(test::to_hex(std::span(sealed).first(kAeadNonceBytes)));
    ciphertexts.insert(test::to_hex(std::span(sealed).subspan(kAeadNonceBytes)));
  }
  CHECK(nonces.size() == 16);
  CHECK(ciphertexts.size() == 16);
}

TEST_CASE("AES-GCM rejects a tampered ciphertext byte", "[crypto][aead]") {
  const auto key = random_secret<kAeadKeyBytes>();
  const auto ad = share_associated_data(7, 3, 9);
  const auto sealed = seal(key, ad, share_like_plaintext());
  for (std::size_t i = kAeadNonceBytes; i < sealed.size() - kAeadTagBytes; i += 7) {
    auto tampered = sealed;
    tampered[i] ^= 0x01;
    CHECK_FALSE(opens(key, ad, tampered));
  }
}

TEST_CASE("AES-GCM rejects a tampered tag or nonce", "[crypto][aead]") {
  const auto key = random_secret<kAeadKeyBytes>();
  const auto ad = share_associated_data(7, 3, 9);
  const auto sealed = seal(key, ad, share_like_plaintext());
  for (std::size_t i = sealed.size() - kAeadTagBytes; i < sealed.size(); ++i) {
    auto tampered = sealed;
    tampered[i] ^= 0x80;
    CHECK_FALSE(opens(key, ad, tampered));
  }
  for (std::size_t i = 0; i < kAeadNonceBytes; ++i) {
    auto tampered = sealed;
    tampered[i] ^= 0x01;
    CHECK_FALSE(opens(key, ad, tampered));
  }
}

TEST_CASE("AES-GCM rejects truncated or extended messages and a wrong key", "[crypto][aead]") {
  const auto key = random_secret<kAeadKeyBytes>();
  const auto other_key = random_secret<kAeadKeyBytes>();
  const auto ad = share_associated_data(7, 3, 9);
  const auto sealed = seal(key, ad, share_like_plaintext());
  CHECK(opens(key, ad, sealed));
  CHECK_FALSE(opens(other_key, ad, sealed));
  CHECK_FALSE(opens(key, ad, std::span(sealed).first(sealed.size() - 1)));
  CHECK_FALSE(opens(key, ad, std::span(sealed).first(kAeadOverheadBytes - 1)));
  CHECK_FALSE(opens(key, ad, {}));
  auto extended = sealed;
  extended.push_back(0);
  CHECK_FALSE(opens(key, ad, extended));
}

TEST_CASE("AES-GCM rejects a share replayed into another round or towards another recipient", "[crypto][aead]") {
  const auto key = random_secret<kAeadKeyBytes>();
  const auto sealed = seal(key, share_associated_data(7, 3, 9), share_like_plaintext());
  CHECK(opens(key, share_associated_data(7, 3, 9), sealed));
  CHECK_FALSE(opens(key, share_associated_data(8, 3, 9), sealed));   // next round
  CHECK_FALSE(opens(key, share_associated_data(7, 3, 10), sealed));  // another recipient
  CHECK_FALSE(opens(key, share_associated_data(7, 4, 9), sealed));   // another claimed sender
  CHECK_FALSE(opens(key, share_associated_data(7, 9, 3), sealed));   // sent back the other way
  CHECK_FALSE(opens(key, {}, sealed));
}

TEST_CASE("share associated data is the label then round sender and recipient as big-endian fields", "[crypto][aead]") {
  const auto ad = share_associated_data(0x0102030405060708ull, 0x0a0b0c0d, 0xfffffffe);
  REQUIRE(ad.size() == kShareAssociatedDataBytes);
  CHECK(test::to_hex(ad) == test::to_hex(test::bytes_of("sotto-secagg-share-v1")) +
                                "0102030405060708"
                                "0a0b0c0d"
                                "fffffffe");
  // Fields cannot bleed into each other: moving a value between fields changes the bytes.
  CHECK(share_associated_data(1, 0, 0) != share_associated_data(0, 1, 0));
  CHECK(share_associated_data(0, 1, 0) != share_associated_data(0, 0, 1));
  CHECK(share_associated_data(1ull << 32, 0, 0) != share_associated_data(0, 1, 0));
}

}  // namespace sotto::crypto
