// ClientSession: one client's side of a SecAgg+ round (Bell et al., CCS 2020; k = n - 1 is the semi-honest SecAgg
// of Bonawitz et al., CCS 2017) as a state machine — messages in, messages out, no I/O.
//
//   start()              R0: builds the neighbour graph from RoundConfig::graph_seed and draws fresh X25519 key
//                        pairs: one mask key, and one channel key per neighbour -> AdvertiseKeys
//   on_key_directory()   R1: draws the self-mask seed b and Shamir-shares b and the mask private key among its k
//                        neighbours (t-of-k; the neighbour of rank r in neighbours(i) gets x = r + 1), each share
//                        sealed for one advertised neighbour with the pair's channel key
//   on_shares()          R2: opens its neighbours' shares and returns y = x + PRG(b) + sum over the neighbours j
//                        that sent it shares of ±PRG(s_ij) (+ if i < j, - otherwise) mod 2^32 — preceded, when some
//                        neighbours' shares do not open (share_envelope.h: the sender's fault), by an Accusation
//                        revealing this client's channel key for each such pair (messages.h says why that is safe)
//   on_unmask_request()  R3: reveals its share of b for each surviving neighbour and its share of the mask key for
//                        each dropped one, never both for the same peer.
//
// Invariants: each method accepts exactly one message, in this order; anything else — an out-of-order or repeated
// call, a directory with keys of a non-neighbour or with fewer than t of its neighbours, repeated public keys,
// shares from a client that is not an advertised neighbour or twice from one, fewer than t neighbours alive, an
// unmask request that names a peer twice, in both lists, or a peer whose shares this client does not hold — throws
// sotto::Error and aborts the session for good (every later call throws). Secrets (key pairs, b, the shares held,
// the input) are wiped when the session aborts, finishes or is destroyed.
//
// Pairwise seeds, shared with ServerSession (the channel keys and the shares' sealing are share_envelope.h's; i, j
// are client indices, round is RoundConfig::round_id, all integers big-endian, lo = min(i, j), hi = max(i, j)):
//   pairwise seed s_ij = HKDF-SHA256(X25519(mask keys), salt = "", kPairwiseMaskInfo || round || lo || hi), 32 B
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/crypto/authenticated_encryption.h"
#include "common/crypto/random.h"
#include "common/crypto/shamir.h"
#include "common/crypto/x25519.h"
#include "common/secagg/graph.h"
#include "common/secagg/messages.h"
#include "common/secagg/share_envelope.h"

namespace sotto::secagg {

inline constexpr std::string_view kPairwiseMaskInfo = "sotto-secagg-pairwise-mask-v1";
inline constexpr std::size_t kPairwiseSeedBytes = 32;

// Throws sotto::Error unless n >= 3, k is in 1..n-1 and even or n - 1, k/2 < t <= k, t >= 2 and 1 <= vector_length
// <= 2^32.
void validate_round_config(const RoundConfig& config);

// s_ij as above, from one side's mask key pair and the other's public mask key (symmetric in i and j).
crypto::SecretArray<kPairwiseSeedBytes> pairwise_mask_seed(const crypto::X25519KeyPair& mine,
                                                           const crypto::X25519PublicKey& peer, std::uint64_t round_id,
                                                           ClientIndex i, ClientIndex j);

class ClientSession {
 public:
  // Where the session's secrets come from: its two X25519 private keys and the self-mask seed b (the Shamir
  // polynomials' coefficients are OpenSSL's, BN_priv_rand_range; they do not change what the session sends to the
  // aggregator). Defaults to RAND_bytes; a simulation passes a seeded stream, a test a fake.
  using RandomFill = std::function<void(std::span<std::uint8_t>)>;

  // Throws sotto::Error for an invalid config, my_index >= n, or an input whose length is not vector_length.
  ClientSession(RoundConfig config, ClientIndex my_index, std::vector<std::uint32_t> input,
                RandomFill random = crypto::random_bytes);
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;
  ClientSession(ClientSession&&) = default;
  ClientSession& operator=(ClientSession&&) = default;

  AdvertiseKeys start();
  EncryptedShares on_key_directory(const KeyDirectory& directory);
  struct SharesAnswer {
    std::optional<Accusation> accusation;  // send first, when set
    MaskedInput input;
  };
  SharesAnswer on_shares(const SharesForYou& shares);
  UnmaskResponse on_unmask_request(const UnmaskRequest& request);

  ClientIndex index() const { return me_; }
  bool aborted() const { return step_ == Step::kAborted; }
  bool finished() const { return step_ == Step::kDone; }

 private:
  enum class Step { kNew, kAdvertised, kShared, kMasked, kDone, kAborted };

  void expect(Step step, std::string_view call);
  [[noreturn]] void fail(const std::string& why);
  // A key pair from 32 bytes of random_ (X25519 clamps them).
  crypto::X25519KeyPair fresh_key_pair();
  void wipe();
  template <typename F>
  auto guarded(F&& body);

  EncryptedShares share_keys(const KeyDirectory& directory);
  SharesAnswer mask_input(const SharesForYou& shares);
  Accusation accuse() const;
  UnmaskResponse unmask(const UnmaskRequest& request);

  RoundConfig config_;
  ClientIndex me_;
  RandomFill random_;
  std::vector<std::uint32_t> input_;
  Step step_ = Step::kNew;
  std::map<ClientIndex, crypto::X25519KeyPair> channel_;  // per neighbour, until R2
  std::optional<crypto::X25519KeyPair> mask_;
  std::optional<NeighbourGraph> graph_;
  crypto::ShamirSecret self_mask_seed_{};
  std::map<ClientIndex, NeighbourKeys> neighbour_keys_;                             // advertised neighbours
  std::map<ClientIndex, ChannelKey> channel_keys_;                                  // per advertised neighbour
  std::map<ClientIndex, HeldShares> held_;      // neighbours whose shares opened
  std::set<ClientIndex> accused_;               // neighbours whose shares did not
};

}  // namespace sotto::secagg
