// ServerSession: the aggregator's side of a SecAgg+ round (Bell et al., CCS 2020; k = n - 1 is the semi-honest
// SecAgg of Bonawitz et al., CCS 2017) as a state machine — messages in, messages out, no sockets, no clock.
//
// Each step collects messages (on_*) until the caller decides the step's deadline has passed and calls close_*,
// which returns what to send next; a client that did not speak in a step is dropped from then on.
//   R0 on_advertise        / close_advertise     -> KeyDirectory for every client that advertised: its neighbours'
//                                                   keys (the graph is RoundConfig::graph_seed's, known from the
//                                                   start, so each client advertises a channel key per neighbour)
//   R1 on_encrypted_shares / close_share_keys    -> SharesForYou for every client that shared
//   R2 on_masked_input     / close_masked_input  -> UnmaskRequest for every client that sent a masked input
//      on_accusation                             -> the verdict on an accusation (messages.h), sent just before
//                                                   the accuser's masked input
//   R3 on_unmask_response  / close_unmasking     -> AggregationResult: the exact sum mod 2^bits of the survivors
//                                                   inputs (survivors = the clients that sent a masked input)
// Unmasking reconstructs each survivor's self-mask seed b from t shares held by its neighbours and subtracts
// PRG(b); for each dropped client whose pairwise masks sit in some survivor's input, it reconstructs the mask
// private key (checked against the advertised public key), re-derives the seeds with its surviving neighbours and
// removes those masks. Work and memory grow as n·k (plus vector_length per survivor and per such mask), not n².
//
// Accusations. The server judges one itself: it checks each revealed pair key against the one the accuser
// advertised for that pair, re-derives the pair's channel key with the accused's key for the pair and opens the
// ciphertext it relayed (share_envelope.h). Shares that do not open convict the accused; shares that open and are
// well-formed convict the accuser (a false accusation); a revealed key that is not the advertised one convicts the
// accuser (nothing can be checked with it). An accuser not convicted stays in the round and is asked at R3 for no
// share of those it accused; each convicted client is excluded from the rest of the round. So that a convicted
// client's masked input can still be left out of the sum, an input is held apart until no neighbour can accuse its
// sender any more (each neighbour that received its shares has sent its masked input) and only then added; inputs
// held apart are capped at `max_held_words` words, beyond which the oldest is added early — a client convicted after
// that stays in this round's sum (Offence::input_counted), as it would had it sent valid shares.
//
// Invariants: a message that is out of order, repeated, from an unknown or dropped index, of the wrong length,
// addressed to a non-neighbour or otherwise malformed is rejected with sotto::Error and changes nothing (the
// session carries on). A step that leaves too few clients — fewer than t overall, or some survivor or dropped
// client whose secret fewer than t neighbours can (or did) help reconstruct — aborts the round: close_* throws
// sotto::Error naming the step and the counts, and every later call throws.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/crypto/prg.h"
#include "common/crypto/shamir.h"
#include "common/crypto/x25519.h"
#include "common/secagg/graph.h"
#include "common/secagg/messages.h"

namespace sotto::secagg {

class ServerSession {
 public:
  // Throws sotto::Error for an invalid config (see validate_round_config).
  explicit ServerSession(RoundConfig config, std::uint64_t max_held_words = kDefaultMaxHeldWords);

  // 32 MiB of masked inputs held apart while their senders can still be accused: as much as the daemon's upload
  // gate lets it assemble at once, so that a thousand-client round stays within a few hundred MiB.
  static constexpr std::uint64_t kDefaultMaxHeldWords = std::uint64_t{8} << 20;

  struct Offence {
    ClientIndex culprit = 0;
    std::string what;
    bool input_counted = false;  // its masked input was already in the sum and stays there
  };
  struct Verdict {
    std::vector<Offence> offences;  // the accuser's own, or the accused clients found at fault
  };

  void on_advertise(ClientIndex index, const AdvertiseKeys& keys);
  std::map<ClientIndex, KeyDirectory> close_advertise();

  void on_encrypted_shares(ClientIndex index, const EncryptedShares& shares);
  std::map<ClientIndex, SharesForYou> close_share_keys();

  void on_masked_input(ClientIndex index, MaskedInput input);
  // Throws sotto::Error, changing nothing, for an accusation from a client that cannot make one now (after its
  // masked input, or a second one) or that names a client which sent it no shares.
  Verdict on_accusation(ClientIndex accuser, const Accusation& accusation);
  std::map<ClientIndex, UnmaskRequest> close_masked_input();

  void on_unmask_response(ClientIndex index, const UnmaskResponse& response);
  AggregationResult close_unmasking();

  const RoundConfig& config() const { return config_; }
  // The clients whose masked input is in (or held apart for) the sum.
  std::uint32_t masked_inputs() const;
  bool aborted() const { return step_ == Step::kAborted; }
  bool finished() const { return step_ == Step::kDone; }
  // The neighbour graph, RoundConfig::graph_seed's.
  const NeighbourGraph& graph() const { return *graph_; }

 private:
  enum class Step { kAdvertise, kShareKeys, kMaskedInput, kUnmasking, kDone, kAborted };
  // How far each client got: it reached a stage by sending that stage's message.
  enum class Reached : std::uint8_t { kNothing, kAdvertised, kShared, kMasked, kResponded };

  void expect(Step step, const char* call) const;
  void check_index(ClientIndex index, Reached needed, const char* call) const;
  [[noreturn]] void abort_round(const std::string& why);
  std::vector<ClientIndex> neighbours_at(ClientIndex i, Reached at_least) const;
  std::vector<ClientIndex> dropped_neighbours(ClientIndex i) const;  // shared at R1, no masked input
  bool needs_mask_key(ClientIndex d) const;  // d dropped after R1 and some neighbour's input carries its masks
  UnmaskRequest request_for(ClientIndex i) const;
  std::size_t share_holders(ClientIndex j) const;  // neighbours with a masked input that did not accuse j
  Offence judge(ClientIndex accuser, const crypto::X25519KeyPair& revealed, ClientIndex accused) const;
  void exclude(Offence& offence);
  // Adds each held input among `candidates` whose sender no neighbour can accuse any more.
  void add_settled(const std::vector<ClientIndex>& candidates);
  void check_masked_input(ClientIndex index, const MaskedInput& input) const;
  void add_held(ClientIndex index);
  // The masks unmasking removes: each survivor's self mask and, for each dropped client, its pairwise mask with
  // each surviving neighbour (its key checked against the one it advertised). The seeds are wiped when let go.
  crypto::OwnedMasks<crypto::ShamirSecret> unmasking_seeds(const std::vector<ClientIndex>& survivors,
                                                           const std::vector<ClientIndex>& dropped);

  RoundConfig config_;
  Step step_ = Step::kAdvertise;
  std::vector<Reached> reached_;
  std::vector<std::optional<AdvertiseKeys>> keys_;
  std::set<crypto::X25519PublicKey> seen_keys_;
  std::optional<NeighbourGraph> graph_;
  std::uint64_t max_held_words_;
  std::vector<bool> excluded_;                                // convicted after an accusation
  std::vector<std::set<ClientIndex>> accused_;                // per accuser
  std::vector<std::vector<EncryptedShare>> inbox_;            // per recipient: (sender, ciphertext)
  std::vector<std::vector<EncryptedShare>> relayed_;          // per recipient, kept through R2 to judge accusations
  std::vector<std::uint32_t> sum_;                            // sum of the masked inputs added so far
  std::map<ClientIndex, MaskedInput> held_;                   // masked inputs not yet added
  std::vector<ClientIndex> held_order_;                       // arrival order of held_ (some already added)
  std::vector<std::vector<crypto::Share>> self_mask_shares_;  // per owner, revealed at R3
  std::vector<std::vector<crypto::Share>> mask_key_shares_;   // per owner, revealed at R3
};

}  // namespace sotto::secagg
