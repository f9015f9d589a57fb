// The messages of SecAgg+ (Bell et al., CCS 2020; with k = n - 1 the semi-honest SecAgg of Bonawitz et al., CCS
// 2017, without the signature round), as plain structs: ClientSession and ServerSession take and return them, and
// the network layer (or the simulator) carries them. Clients are named by their index 0..n-1 for the round,
// assigned by the server and sent with the RoundConfig.
//
// Steps: R0 AdvertiseKeys -> KeyDirectory; R1 EncryptedShares -> SharesForYou; R2 MaskedInput (after an
// Accusation, when some shares did not open) -> UnmaskRequest; R3 UnmaskResponse -> AggregationResult. Every
// vector of inputs and masks is mod 2^bits (RoundConfig::bits, 32 by default); masked inputs travel as words below
// 2^bits. The neighbour graph is drawn by the server before the round starts (RoundConfig::graph_seed), so that
// each client can advertise one channel key per neighbour: a channel key then belongs to one pair of clients, and
// revealing it (an accusation) opens nothing but that pair's two ciphertexts.
#pragma once

#include <array>
#include <cstddef>
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
  // The neighbour graph's seed, drawn by the server from the CSPRNG for each round before any key exists. Public:
  // knowing its neighbours lets a client do nothing it could not do with any other; what the graph must resist is
  // the corrupt clients choosing it, and they cannot, since the cohort is fixed before the seed is drawn.
  GraphSeed graph_seed{};
};

// 2^bits - 1: the mask that reduces a word mod 2^bits.
inline std::uint32_t modulus_mask(std::uint32_t bits) {
  return bits >= 32 ? 0xFFFFFFFFu : (std::uint32_t{1} << bits) - 1;
}

// R0 client -> server: the client's X25519 public keys for this round.
struct AdvertiseKeys {
  crypto::X25519PublicKey mask_public{};  // agrees the pairwise mask seeds
  // One per neighbour j (exactly its k neighbours): with j's key for the pair, encrypts the shares the two send each
  // other (share_envelope.h).
  std::map<ClientIndex, crypto::X25519PublicKey> channel_public;
};

// What one client needs of one neighbour's advertised keys.
struct NeighbourKeys {
  crypto::X25519PublicKey channel_public{};  // the neighbour's channel key for the pair with the recipient
  crypto::X25519PublicKey mask_public{};
};

// R0 server -> each client that advertised: the keys of its neighbours that advertised.
struct KeyDirectory {
  std::map<ClientIndex, NeighbourKeys> keys;
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
// The words come unpacked (y), or as they travel (packed at RoundConfig::bits, packed_words.h; y is then empty):
// the server adds packed words straight into its sum.
struct MaskedInput {
  std::vector<std::uint32_t> y;
  std::vector<std::byte> packed;
};

// One pair's channel private key, revealed in an accusation.
struct PairKeyReveal {
  ClientIndex accused = 0;
  crypto::SecretArray<crypto::kX25519KeyBytes> channel_private{};  // the accuser's key for the pair with `accused`
};

// R2 client -> server, just before its masked input, when the shares some neighbours sent it do not open (see
// share_envelope.h): whom it accuses, each with the accuser's channel private key for that pair, with which the
// server tests the ciphertext it relayed itself. A pair key opens only the pair's two ciphertexts: the accused's
// shares for the accuser (garbage, or, when the accusation is false, shares the lying accuser holds anyway) and the
// accuser's shares for the accused (which the accused holds). So a reveal tells the server nothing that the
// accuser or the accused did not already know, however many clients accuse, and the accuser stays in the round:
// it masks its input as usual (with the accused too, whose pairwise mask needs no share) and is asked at R3 for no
// share of the clients it accused.
struct Accusation {
  std::vector<PairKeyReveal> reveals;  // sorted by accused, no repeats
};

// R2 server -> each client that sent a masked input, about its neighbours that shared at R1 and that it did not
// accuse.
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
