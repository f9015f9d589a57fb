// Authenticated encryption: AES-GCM with a random 96-bit nonce, sealed as nonce (12 bytes) || ciphertext || tag
// (16 bytes). A 16-byte key means AES-128-GCM (Shamir shares in SecAgg+), a 32-byte key AES-256-GCM (the device's
// state at rest, client/state_store.h).
//
// Invariants: open() returns the plaintext only if the key, the associated data and every sealed byte are exactly
// those seal() used; otherwise it returns nothing (a tampered byte, a truncated message, a share replayed into
// another round or towards another recipient). Associated data binds a share to its context: build it with
// share_associated_data(). Nonces are random, so one key must seal far fewer than 2^32 messages; SecAgg derives
// a fresh key per pair of clients per round and seals one message with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/crypto/secret.h"

namespace sotto::crypto {

inline constexpr std::size_t kAeadKeyBytes = 16;
inline constexpr std::size_t kAead256KeyBytes = 32;
inline constexpr std::size_t kAeadNonceBytes = 12;
inline constexpr std::size_t kAeadTagBytes = 16;
inline constexpr std::size_t kAeadOverheadBytes = kAeadNonceBytes + kAeadTagBytes;

// nonce || AES-128-GCM(key, nonce, associated_data, plaintext) || tag, with a fresh random nonce.
std::vector<std::uint8_t> seal(std::span<const std::uint8_t, kAeadKeyBytes> key,
                               std::span<const std::uint8_t> associated_data, std::span<const std::uint8_t> plaintext);

// The plaintext of a sealed message, or nullopt if it does not authenticate under (key, associated_data).
std::optional<SecretBytes> open(std::span<const std::uint8_t, kAeadKeyBytes> key,
                                std::span<const std::uint8_t> associated_data, std::span<const std::uint8_t> sealed);

// The same with AES-256-GCM.
std::vector<std::uint8_t> seal(std::span<const std::uint8_t, kAead256KeyBytes> key,
                               std::span<const std::uint8_t> associated_data, std::span<const std::uint8_t> plaintext);
std::optional<SecretBytes> open(std::span<const std::uint8_t, kAead256KeyBytes> key,
                                std::span<const std::uint8_t> associated_data, std::span<const std::uint8_t> sealed);

// The associated data of the share that `sender` sends to `recipient` (holder indices) in round `round`:
// the 21 bytes "sotto-secagg-share-v1", then round (8 bytes), sender (4 bytes), recipient (4 bytes), all
// big-endian. Fixed widths after a fixed label make the encoding injective: different triples never collide.
inline constexpr char kShareAssociatedDataLabel[] = "sotto-secagg-share-v1";
inline constexpr std::size_t kShareAssociatedDataBytes = sizeof(kShareAssociatedDataLabel) - 1 + 8 + 4 + 4;
std::vector<std::uint8_t> share_associated_data(std::uint64_t round, std::uint32_t sender, std::uint32_t recipient);

}  // namespace sotto::crypto
