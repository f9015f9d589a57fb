#include "common/crypto/x25519.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <string>
#include <utility>

#include "common/util/error.h"

namespace sotto::crypto {

X25519PublicKey x25519_public_key_from_bytes(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != kX25519KeyBytes) {
    throw Error("crypto: an X25519 public key is " + std::to_string(kX25519KeyBytes) + " bytes, got " +
                std::to_string(bytes.size()));
  }
  X25519PublicKey key;
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

X25519KeyPair::X25519KeyPair(internal::PKey key) : key_(std::move(key)) {
  std::size_t length = public_key_.size();
  if (EVP_PKEY_get_raw_public_key(key_.get(), public_key_.data(), &length) != 1 || length != kX25519KeyBytes) {
    internal::throw_openssl_error("EVP_PKEY_get_raw_public_key(X25519)");
  }
}

X25519KeyPair X25519KeyPair::generate() {
  internal::PKey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  if (!key) internal::throw_openssl_error("X25519 key generation");
  return X25519KeyPair(std::move(key));
}

X25519KeyPair X25519KeyPair::from_private_bytes(std::span<const std::uint8_t, kX25519KeyBytes> private_key) {
  internal::PKey key(
      EVP_PKEY_new_raw_private_key_ex(nullptr, "X25519", nullptr, private_key.data(), private_key.size()));
  if (!key) internal::throw_openssl_error("EVP_PKEY_new_raw_private_key_ex(X25519)");
  return X25519KeyPair(std::move(key));
}

SecretArray<kX25519KeyBytes> X25519KeyPair::private_bytes() const {
  SecretArray<kX25519KeyBytes> out;
  std::size_t length = out.size();
  if (EVP_PKEY_get_raw_private_key(key_.get(), out.data(), &length) != 1 || length != kX25519KeyBytes) {
    internal::throw_openssl_error("EVP_PKEY_get_raw_private_key(X25519)");
  }
  return out;
}

X25519SharedSecret X25519KeyPair::agree(const X25519PublicKey& peer) const {
  internal::PKey peer_key(EVP_PKEY_new_raw_public_key_ex(nullptr, "X25519", nullptr, peer.data(), peer.size()));
  if (!peer_key) internal::throw_openssl_error("EVP_PKEY_new_raw_public_key_ex(X25519)");
  internal::PKeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
  if (!ctx) internal::throw_openssl_error("EVP_PKEY_CTX_new_from_pkey(X25519)");
  if (EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer(ctx.get(), peer_key.get()) != 1) {
    internal::throw_openssl_error("X25519 agreement setup");
  }
  X25519SharedSecret secret{};
  std::size_t length = secret.size();
  // OpenSSL itself fails the derivation when the result is all zeros; the explicit check below keeps that
  // guarantee independent of the provider.
  if (EVP_PKEY_derive(ctx.get(), secret.data(), &length) != 1) {
    internal::throw_openssl_error("X25519 agreement (a small-order peer public key gives an all-zero secret)");
  }
  static constexpr std::array<std::uint8_t, kX25519KeyBytes> kZero{};
  if (length != kX25519KeyBytes || CRYPTO_memcmp(secret.data(), kZero.data(), kZero.size()) == 0) {
    throw Error("crypto: X25519 agreement gave an all-zero secret: the peer's public key is a small-order point");
  }
  return secret;
}

}  // namespace sotto::crypto
