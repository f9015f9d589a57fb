#include "common/crypto/x25519.h"

#include <algorithm>
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

X25519KeyPair key_pair_from_hex(std::string_view hex) {
  const auto bytes = from_hex(hex);
  REQUIRE(bytes.size() == kX25519KeyBytes);
  return X25519KeyPair::from_private_bytes(std::span<const std::uint8_t, kX25519KeyBytes>(bytes.data(), 32));
}

}  // namespace

TEST_CASE("X25519 agreement is symmetric: a with B equals b with A", "[crypto][x25519]") {
  const auto alice = X25519KeyPair::generate();
  const auto bob = X25519KeyPair::generate();
  const X25519SharedSecret ab = alice.agree(bob.public_key());
  const X25519SharedSecret ba = bob.agree(alice.public_key());
  CHECK(ab == ba);
  CHECK(ab != X25519SharedSecret{});
}

TEST_CASE("X25519 shared secrets of different pairs differ", "[crypto][x25519]") {
  const auto a = X25519KeyPair::generate();
  const auto b = X25519KeyPair::generate();
  const auto c = X25519KeyPair::generate();
  CHECK(a.public_key() != b.public_key());
  const X25519SharedSecret ab = a.agree(b.public_key());
  const X25519SharedSecret ac = a.agree(c.public_key());
  const X25519SharedSecret bc = b.agree(c.public_key());
  CHECK(ab != ac);
  CHECK(ab != bc);
  CHECK(ac != bc);
}

TEST_CASE("X25519 matches the RFC 7748 section 6.1 Diffie-Hellman vectors", "[crypto][x25519]") {
  const auto alice = key_pair_from_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const auto bob = key_pair_from_hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  CHECK(to_hex(alice.public_key()) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  CHECK(to_hex(bob.public_key()) == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  const auto expected = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
  CHECK(to_hex(alice.agree(bob.public_key())) == expected);
  CHECK(to_hex(bob.agree(alice.public_key())) == expected);
}

TEST_CASE("an X25519 key pair rebuilt from its private bytes is the same key pair", "[crypto][x25519]") {
  const auto original = X25519KeyPair::generate();
  const auto peer = X25519KeyPair::generate();
  const auto rebuilt = X25519KeyPair::from_private_bytes(original.private_bytes());
  CHECK(rebuilt.public_key() == original.public_key());
  CHECK(rebuilt.agree(peer.public_key()) == original.agree(peer.public_key()));
}

TEST_CASE("X25519 public keys of the wrong length are refused", "[crypto][x25519]") {
  const auto key = X25519KeyPair::generate();
  const std::vector<std::uint8_t> bytes(key.public_key().begin(), key.public_key().end());
  CHECK(x25519_public_key_from_bytes(bytes) == key.public_key());
  CHECK_THROWS_AS(x25519_public_key_from_bytes(std::span(bytes).first(31)), Error);
  std::vector<std::uint8_t> longer = bytes;
  longer.push_back(0);
  CHECK_THROWS_AS(x25519_public_key_from_bytes(longer), Error);
  CHECK_THROWS_AS(x25519_public_key_from_bytes({}), Error);
}

TEST_CASE("X25519 agreement with a small-order public key is refused instead of giving a zero secret",
          "[crypto][x25519]") {
  const auto key = X25519KeyPair::generate();
  // u = 0 and u = 1 are points of small order: any private key maps them to the all-zero output.
  X25519PublicKey zero{};
  X25519PublicKey one{};
  one[0] = 1;
  CHECK_THROWS_AS(key.agree(zero), Error);
  CHECK_THROWS_AS(key.agree(one), Error);
}

}  // namespace sotto::crypto
