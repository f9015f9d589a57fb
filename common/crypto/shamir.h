// Shamir secret sharing (t-out-of-n) of 32-byte secrets: SecAgg clients share their self-mask seed and their
// mask private key among their neighbours, so the aggregator can remove the masks of survivors and of dropouts.
//
// Field: GF(p) with p = 2^256 + 297, the smallest prime above 2^256 (the tests check both facts). Every 32-byte
// secret is a field element as it is, so one polynomial carries the whole secret (no halves to keep in step), and
// a share's value takes 33 bytes, half of what p = 2^521 - 1 would need; that matters because the original
// SecAgg sends every client's shares to all n - 1 others. Arithmetic is OpenSSL BIGNUM; coefficients come from
// BN_priv_rand_range (OpenSSL's private CSPRNG). Lagrange products multiply up to three x-coordinates (at most
// 2^20 each) in one machine word before each modular reduction.
//
// Invariants: split(s, t, n) gives n shares with x = 1..n; any t distinct shares reconstruct s; any t - 1 reveal
// nothing about s (each value is uniform). reconstruct() refuses (sotto::Error) fewer than t shares, a duplicate x,
// x == 0 or x > kShamirMaxHolders, a value >= p, and shares that interpolate to a value that is not 32 bytes.
// Given more than t valid shares it uses the first t: it cannot tell a corrupted share from a good one.
// Share values and coefficients are wiped when freed. BIGNUM arithmetic is not constant-time; the timing of a
// local split or reconstruction may depend on the secret.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/crypto/secret.h"

namespace sotto::crypto {

inline constexpr std::size_t kShamirSecretBytes = 32;
inline constexpr std::size_t kShamirValueBytes = 33;
inline constexpr std::size_t kShamirShareBytes = 4 + kShamirValueBytes;
inline constexpr std::uint32_t kShamirMaxHolders = 1u << 20;
// p = 2^256 + 297, big-endian hex.
inline constexpr std::string_view kShamirPrimeHex = "10000000000000000000000000000000000000000000000000000000000000129";

using ShamirSecret = SecretArray<kShamirSecretBytes>;

struct Share {
  std::uint32_t x = 0;                 // the holder's index, 1..n
  SecretArray<kShamirValueBytes> y{};  // the polynomial's value at x, big-endian, < p

  // x (4 bytes, big-endian) || y (33 bytes): kShamirShareBytes bytes.
  SecretArray<kShamirShareBytes> to_bytes() const;
  // The inverse of to_bytes; throws sotto::Error on a wrong length, x out of 1..kShamirMaxHolders, or y >= p.
  static Share from_bytes(std::span<const std::uint8_t> bytes);
};

// Shares `secret` among holders 1..n so that any t of them recover it; 2 <= t <= n <= kShamirMaxHolders.
std::vector<Share> split(std::span<const std::uint8_t, kShamirSecretBytes> secret, std::uint32_t t, std::uint32_t n);

// The secret from at least t shares of a t-out-of-n split (see the invariants above for what is refused).
ShamirSecret reconstruct(std::span<const Share> shares, std::uint32_t t);

}  // namespace sotto::crypto
