// ShareEnvelope: what one SecAgg+ client seals for one neighbour at R1 — its Shamir shares of its self-mask seed b
// and of its mask private key — and how the neighbour (or, to judge an accusation, the aggregator holding the
// accuser's revealed channel key) opens and checks it.
//
// Key derivation (i, j are client indices, round is RoundConfig::round_id, integers big-endian, lo = min(i, j),
// hi = max(i, j)):
//   channel key of {i, j} = HKDF-SHA256(X25519(i's channel key for j, j's channel key for i), salt = "",
//                                       kChannelKeyInfo || round || lo || hi), 16 B
// Each client advertises a fresh channel key pair for each neighbour (messages.h), so the key is the pair's alone:
// either side's private key for the pair opens the two ciphertexts the pair exchanged, and nothing else. A share's plaintext is sender (4 B) || recipient (4 B) || share of b (37 B) || share of the mask
// key (37 B), sealed with associated data crypto::share_associated_data(round, sender, recipient).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/crypto/authenticated_encryption.h"
#include "common/crypto/shamir.h"
#include "common/crypto/x25519.h"
#include "common/secagg/messages.h"

namespace sotto::secagg {

inline constexpr std::string_view kChannelKeyInfo = "sotto-secagg-channel-key-v1";
inline constexpr std::size_t kSharePlaintextBytes = 4 + 4 + 2 * crypto::kShamirShareBytes;
inline constexpr std::size_t kShareCiphertextBytes = kSharePlaintextBytes + crypto::kAeadOverheadBytes;

using ChannelKey = crypto::SecretArray<crypto::kAeadKeyBytes>;

// The HKDF info of a key one pair of clients derives: label || round || lo || hi (big-endian, lo = min(i, j)).
std::vector<std::uint8_t> pair_key_info(std::string_view label, std::uint64_t round_id, ClientIndex i, ClientIndex j);

// The channel key of {me, peer}, from my channel key pair for the peer and the peer's channel public key for me.
ChannelKey channel_key(const crypto::X25519KeyPair& mine, const crypto::X25519PublicKey& peer,
                       std::uint64_t round_id, ClientIndex me, ClientIndex peer_index);

// The two shares one client holds of a neighbour's secrets.
struct HeldShares {
  crypto::Share self_mask;  // of the sender's b
  crypto::Share mask_key;   // of the sender's mask private key
};

// The ciphertext `sender` addresses to `recipient`, holding those two shares.
std::vector<std::uint8_t> seal_shares(const ChannelKey& key, std::uint64_t round_id, ClientIndex sender,
                                      ClientIndex recipient, const crypto::Share& self_mask,
                                      const crypto::Share& mask_key);

// The shares in `ciphertext` from `sender` to `recipient`, or why they are not acceptable: the ciphertext does not
// authenticate, names another sender or recipient, is malformed, or its shares' x-coordinate is not `expected_x`.
// Every one of these is the sender's doing (only the pair holds the key, and the associated data binds the
// direction and round), which is what makes an accusation checkable.
std::variant<HeldShares, std::string> open_shares(const ChannelKey& key, std::uint64_t round_id, ClientIndex sender,
                                                  ClientIndex recipient, std::uint32_t expected_x,
                                                  std::span<const std::uint8_t> ciphertext);

}  // namespace sotto::secagg
