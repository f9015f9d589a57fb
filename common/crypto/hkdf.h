// HKDF-SHA256 (RFC 5869): turns input keying material that is secret but not uniform (an X25519 shared secret) or
// uniform but used for several purposes (a seed) into independent keys, one per `info` label.
//
// Invariants: the same (ikm, salt, info, length) always gives the same bytes; outputs for different `info` are
// independent, so every use of a secret in Sotto has its own fixed, versioned info string (domain separation).
// An empty salt means the RFC's default (HashLen zero bytes). Output length is 1..255*32 bytes; ikm must not be
// empty. Computed by OpenSSL's EVP_KDF "HKDF"; failures throw sotto::Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/crypto/secret.h"

namespace sotto::crypto {

inline constexpr std::size_t kHkdfSha256MaxOutputBytes = 255 * 32;

// Fills `out` (1..kHkdfSha256MaxOutputBytes bytes) with HKDF-SHA256(ikm, salt, info).
void hkdf_sha256(std::span<const std::uint8_t> ikm, std::span<const std::uint8_t> salt,
                 std::span<const std::uint8_t> info, std::span<std::uint8_t> out);

// The same, returning `length` bytes.
SecretBytes hkdf_sha256(std::span<const std::uint8_t> ikm, std::span<const std::uint8_t> salt,
                        std::span<const std::uint8_t> info, std::size_t length);

}  // namespace sotto::crypto
