// X25519 (RFC 7748) key agreement: each SecAgg client makes two key pairs per round (one for the channel that
// carries Shamir shares, one for pairwise masks) and agrees a 32-byte shared secret with each neighbour.
//
// Invariants: agree(a, B) == agree(b, A) for key pairs (a, A) and (b, B); a public key is exactly 32 bytes; an
// agreement whose result is all zeros (the peer sent a small-order point, which would make the "secret" public)
// is refused with sotto::Error, never returned. The raw shared secret is not a key: derive keys from it with
// HKDF and a purpose label. Private keys live inside OpenSSL's EVP_PKEY, which wipes them when freed; exported
// private bytes (for Shamir sharing the mask key) come back as a SecretArray.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/crypto/openssl_util.h"
#include "common/crypto/secret.h"

namespace sotto::crypto {

inline constexpr std::size_t kX25519KeyBytes = 32;

using X25519PublicKey = std::array<std::uint8_t, kX25519KeyBytes>;
using X25519SharedSecret = SecretArray<kX25519KeyBytes>;

// Parses a peer's public key from the wire; throws sotto::Error unless it is exactly 32 bytes.
X25519PublicKey x25519_public_key_from_bytes(std::span<const std::uint8_t> bytes);

class X25519KeyPair {
 public:
  // A fresh key pair from the CSPRNG.
  static X25519KeyPair generate();
  // The key pair whose private key is these 32 bytes (e.g. reconstructed from Shamir shares).
  static X25519KeyPair from_private_bytes(std::span<const std::uint8_t, kX25519KeyBytes> private_key);

  const X25519PublicKey& public_key() const { return public_key_; }
  SecretArray<kX25519KeyBytes> private_bytes() const;

  // The shared secret with the holder of `peer`; throws sotto::Error if it is all zeros or OpenSSL fails.
  X25519SharedSecret agree(const X25519PublicKey& peer) const;

 private:
  explicit X25519KeyPair(internal::PKey key);

  internal::PKey key_;
  X25519PublicKey public_key_{};
};

}  // namespace sotto::crypto
