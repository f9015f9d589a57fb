#include "common/crypto/hkdf.h"

#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "common/util/error.h"
#include "tests/common/crypto/test_bytes.h"

namespace sotto::crypto {
namespace {

using test::from_hex;
using test::to_hex;

}  // namespace

TEST_CASE("HKDF-SHA256 matches RFC 5869 test case 1", "[crypto][hkdf]") {
  const auto ikm = from_hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  const auto salt = from_hex("000102030405060708090a0b0c");
  const auto info = from_hex("f0f1f2f3f4f5f6f7f8f9");
  const SecretBytes okm = hkdf_sha256(ikm, salt, info, 42);
  CHECK(to_hex(okm) == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST_CASE("HKDF-SHA256 matches RFC 5869 test case 2 with long inputs and output", "[crypto][hkdf]") {
  std::vector<std::uint8_t> ikm, salt, info;
  for (int i = 0; i < 80; ++i) {
    ikm.push_back(static_cast<std::uint8_t>(i));
    salt.push_back(static_cast<std::uint8_t>(0x60 + i));
    info.push_back(static_cast<std::uint8_t>(0xb0 + i));
  }
  const SecretBytes okm = hkdf_sha256(ikm, salt, info, 82);
  CHECK(to_hex(okm) ==
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09"
        "b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

TEST_CASE("HKDF-SHA256 matches RFC 5869 test case 3 with empty salt and info", "[crypto][hkdf]") {
  const auto ikm = from_hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  const SecretBytes okm = hkdf_sha256(ikm, {}, {}, 42);
  CHECK(to_hex(okm) == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST_CASE("HKDF-SHA256 outputs for different info labels are unrelated", "[crypto][hkdf]") {
  const auto ikm = from_hex("00112233445566778899aabbccddeeff");
  const SecretBytes a = hkdf_sha256(ikm, {}, test::bytes_of("label a"), 32);
  const SecretBytes b = hkdf_sha256(ikm, {}, test::bytes_of("label b"), 32);
  const SecretBytes a_long = hkdf_sha256(ikm, {}, test::bytes_of("label a"), 64);
  CHECK(a != b);
  // A longer output extends a shorter one (RFC 5869's T(1) || T(2) || ...): length is not a domain separator.
  CHECK(std::equal(a.begin(), a.end(), a_long.begin()));
}

TEST_CASE("HKDF-SHA256 refuses empty keying material and out-of-range lengths", "[crypto][hkdf]") {
  const auto ikm = from_hex("00112233");
  CHECK_THROWS_AS(hkdf_sha256({}, {}, {}, 32), Error);
  CHECK_THROWS_AS(hkdf_sha256(ikm, {}, {}, 0), Error);
  CHECK_THROWS_AS(hkdf_sha256(ikm, {}, {}, kHkdfSha256MaxOutputBytes + 1), Error);
  CHECK(hkdf_sha256(ikm, {}, {}, kHkdfSha256MaxOutputBytes).size() == kHkdfSha256MaxOutputBytes);
}

}  // namespace sotto::crypto
