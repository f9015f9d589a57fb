// The messages of SecAgg+ (Bell et al., CCS 2020; with k = n - 1 the semi-honest SecAgg of Bonawitz et al., CCS
// 2017, without the signature round), as plain structs: ClientSession and ServerSession take and return them, and
// the network layer (or the simulator) carries them. Clients are named by their index 0..n-1 for the round,
// assigned by the server and sent with the RoundConfig.
//
// Steps: R0 AdvertiseKeys -> KeyDirectory; R1 EncryptedShares -> SharesForYou; R2 MaskedInput (or an Accusation)
// -> UnmaskRequest; R3 UnmaskResponse -> AggregationResult. Every vector of inputs and masks is mod 2^bits
// (RoundConfig::bits, 32 by default); masked inputs travel as words below 2^bits.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <vector>

#include "common/crypto/x25519.h"
#include "common/secagg/graph.h"

namespace sotto::secagg {

using ClientIndex = std::uint32_t;
using Bytes = std::vector<std::uint8_t>;

// The smallest cohort secure aggregation runs with: with two clients, each could subtract its own input from the
// sum and learn the other's.
inline constexpr std::uint32_t kMinClients = 3;

// server -> all (with each client's own index): the round's public parameters.
struct RoundConfig {
  std::uint64_t round_id = 0;
  std::uint32_t n = 0;  // clients, indices 0..n-1
  std::uint32_t k = 0;  // neighbours per client (n - 1: complete graph)
  std::uint32_t t = 0;  // Shamir threshold, k/2 < t <= k
  std::uint64_t vector_length = 0;
  std::uint32_t bits = 32;  // inputs, masks and the sum live mod 2^bits (1..32)
};

// 2^bits - 1: the mask that reduces a word mod 2^bits.
inline std::uint32_t modulus_mask(std::uint32_t bits) {
  return bits >= 32 ? 0xFFFFFFFFu : (std::uint32_t{1} << bits) - 1;
}

// R0 client -> server: the client's two X25519 public keys for this round.
struct AdvertiseKeys {
  crypto::X25519PublicKey channel_public{};  // encrypts the Shamir shares sent to it
  crypto::X25519PublicKey mask_public{};     // agrees the pairwise mask seeds
};

// R0 server -> every client that advertised: the graph seed (drawn after all keys arrived) and every advertised key.
struct KeyDirectory {
  GraphSeed seed{};
  std::map<ClientIndex, AdvertiseKeys> keys;
};

struct EncryptedShare {
  ClientIndex peer = 0;  // the recipient (in EncryptedShares) or the sender (in SharesForYou)
  Bytes ciphertext;      // crypto::seal of sender || recipient || share of b || share of the mask key
};

// R1 client -> server: one ciphertext for each neighbour that advertised keys.
struct EncryptedShares {
  std::vector<EncryptedShare> shares;  // peer = recipient
};

// R1 server -> each client that shared: the ciphertexts its neighbours addressed to it.
struct SharesForYou {
  std::vector<EncryptedShare> shares;  // peer = sender
};

// R2 client -> server: y = x + PRG(b) + sum over neighbours j that shared at R1 of ±PRG(s_ij), mod 2^32.
struct MaskedInput {
  std::vector<std::uint32_t> y;
};

// R2 client -> server, instead of a masked input, when the shares some neighbours sent it do not open (see
// share_envelope.h): whom it accuses, and its round-only channel private key, with which the server tests the
// ciphertexts it relayed itself. Channel keys serve both directions of a pair, so the reveal opens every share the
// accuser exchanged, its own shares of b and of its mask key among them: the accuser therefore sends no masked
// input and leaves the round, and it counts as corrupt in this round's security bound, since the server now holds
// the share of b and of the mask key that each of its neighbours sent it. Known weakness: nothing caps the
// accusers. An insider that garbles its shares to t of an honest client u's neighbours makes them all reveal,
// and a curious aggregator then holds t shares of both of u's secrets, which unmask u's input. The fix needs
// per-pair receive keys, so that a reveal opens only the accused's own ciphertext, or a share-check step before any
// masked input is sent, so that u can hold its input back.
struct Accusation {
  std::vector<ClientIndex> accused;  // sorted, no repeats
  crypto::SecretArray<crypto::kX25519KeyBytes> channel_private{};
};

// R2 server -> each client that sent a masked input, about its neighbours that shared at R1.
struct UnmaskRequest {
  std::vector<ClientIndex> survivors;  // sent a masked input: reveal your share of their b
  std::vector<ClientIndex> dropped;    // shared at R1 but sent no masked input: reveal your share of their mask key
};

struct RevealedShare {
  ClientIndex owner = 0;  // whose secret this is a share of
  Bytes share;            // crypto::Share::to_bytes
};

// R3 client -> server.
struct UnmaskResponse {
  std::vector<RevealedShare> self_mask_shares;  // for each survivor in the request
  std::vector<RevealedShare> mask_key_shares;   // for each dropped neighbour in the request
};

// The outcome: the sum mod 2^32 of the inputs of exactly the clients in `survivors` (sorted).
struct AggregationResult {
  std::vector<std::uint32_t> sum;
  std::vector<ClientIndex> survivors;
};

}  // namespace sotto::secagg
