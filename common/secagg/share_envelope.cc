#include "common/secagg/share_envelope.h"

#include <algorithm>

#include "common/crypto/hkdf.h"
#include "common/util/error.h"

namespace sotto::secagg {

namespace {

void append_be32(crypto::SecretBytes& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}

std::uint32_t read_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

std::vector<std::uint8_t> pair_key_info(std::string_view label, std::uint64_t round_id, ClientIndex i,
                                        ClientIndex j) {
  std::vector<std::uint8_t> info(label.begin(), label.end());
  for (int s = 56; s >= 0; s -= 8) info.push_back(static_cast<std::uint8_t>(round_id >> s));
  for (ClientIndex v : {std::min(i, j), std::max(i, j)}) {
    for (int s = 24; s >= 0; s -= 8) info.push_back(static_cast<std::uint8_t>(v >> s));
  }
  return info;
}

ChannelKey channel_key(const crypto::X25519KeyPair& mine, const crypto::X25519PublicKey& peer,
                       std::uint64_t round_id, ClientIndex me, ClientIndex peer_index) {
  const auto shared = mine.agree(peer);
  ChannelKey key;
  crypto::hkdf_sha256(shared, {}, pair_key_info(kChannelKeyInfo, round_id, me, peer_index), key);
  return key;
}

std::vector<std::uint8_t> seal_shares(const ChannelKey& key, std::uint64_t round_id, ClientIndex sender,
                                      ClientIndex recipient, const crypto::Share& self_mask,
                                      const crypto::Share& mask_key) {
  crypto::SecretBytes plaintext;
  plaintext.reserve(kSharePlaintextBytes);
  append_be32(plaintext, sender);
  append_be32(plaintext, recipient);
  for (const auto& share : {self_mask.to_bytes(), mask_key.to_bytes()}) {
    plaintext.insert(plaintext.end(), share.begin(), share.end());
  }
  return crypto::seal(key, crypto::share_associated_data(round_id, sender, recipient), plaintext);
}

std::variant<HeldShares, std::string> open_shares(const ChannelKey& key, std::uint64_t round_id, ClientIndex sender,
                                                  ClientIndex recipient, std::uint32_t expected_x,
                                                  std::span<const std::uint8_t> ciphertext) {
  const std::string from = "the shares from client " + std::to_string(sender);
  const auto plaintext = crypto::open(key, crypto::share_associated_data(round_id, sender, recipient), ciphertext);
  if (!plaintext) return from + " do not authenticate";
  if (plaintext->size() != kSharePlaintextBytes || read_be32(plaintext->data()) != sender ||
      read_be32(plaintext->data() + 4) != recipient) {
    return from + " name the wrong sender or recipient";
  }
  const std::span<const std::uint8_t> body(plaintext->data() + 8, 2 * crypto::kShamirShareBytes);
  HeldShares held;
  try {
    held = {crypto::Share::from_bytes(body.first(crypto::kShamirShareBytes)),
            crypto::Share::from_bytes(body.last(crypto::kShamirShareBytes))};
  } catch (const Error& e) {
    return from + " are malformed: " + e.what();
  }
  if (held.self_mask.x != expected_x || held.mask_key.x != expected_x) {
    return from + " carry the wrong x-coordinate";
  }
  return held;
}

}  // namespace sotto::secagg
