// ServerSession: the aggregator's side of a SecAgg+ round (Bell et al., CCS 2020; k = n - 1 is the semi-honest
// SecAgg of Bonawitz et al., CCS 2017) as a state machine — messages in, messages out, no sockets, no clock.
//
// Each step collects messages (on_*) until the caller decides the step's deadline has passed and calls close_*,
// which returns what to send next; a client that did not speak in a step is dropped from then on.
//   R0 on_advertise        / close_advertise     -> KeyDirectory for every client that advertised (graph seed drawn
//                                                   now, from the CSPRNG, after all keys are in)
//   R1 on_encrypted_shares / close_share_keys    -> SharesForYou for every client that shared
//   R2 on_masked_input     / close_masked_input  -> UnmaskRequest for every client that sent a masked input
//   R3 on_unmask_response  / close_unmasking     -> AggregationResult: the exact sum mod 2^bits of the survivors
//                                                   inputs (survivors = the clients that sent a masked input)
// Unmasking reconstructs each survivor's self-mask seed b from t shares held by its neighbours and subtracts
// PRG(b); for each dropped client whose pairwise masks sit in some survivor's input, it reconstructs the mask
// private key (checked against the advertised public key), re-derives the seeds with its surviving neighbours and
// removes those masks. Work and memory grow as n·k (plus vector_length per survivor and per such mask), not n².
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

#include "common/crypto/shamir.h"
#include "common/crypto/x25519.h"
#include "common/secagg/graph.h"
#include "common/secagg/messages.h"

namespace sotto::secagg {

class ServerSession {
 public:
  // Throws sotto::Error for an invalid config (see validate_round_config).
  explicit ServerSession(RoundConfig config);

  void on_advertise(ClientIndex index, const AdvertiseKeys& keys);
  KeyDirectory close_advertise();

  void on_encrypted_shares(ClientIndex index, const EncryptedShares& shares);
  std::map<ClientIndex, SharesForYou> close_share_keys();

  void on_masked_input(ClientIndex index, const MaskedInput& input);
  std::map<ClientIndex, UnmaskRequest> close_masked_input();

  void on_unmask_response(ClientIndex index, const UnmaskResponse& response);
  AggregationResult close_unmasking();

  const RoundConfig& config() const { return config_; }
  bool aborted() const { return step_ == Step::kAborted; }
  bool finished() const { return step_ == Step::kDone; }
  // The neighbour graph, once close_advertise has drawn its seed.
  const NeighbourGraph* graph() const { return graph_ ? &*graph_ : nullptr; }

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

  RoundConfig config_;
  Step step_ = Step::kAdvertise;
  std::vector<Reached> reached_;
  std::vector<std::optional<AdvertiseKeys>> keys_;
  std::set<crypto::X25519PublicKey> seen_keys_;
  std::optional<NeighbourGraph> graph_;
  std::vector<std::vector<EncryptedShare>> inbox_;            // per recipient: (sender, ciphertext)
  std::vector<std::uint32_t> sum_;                            // sum of the masked inputs so far
  std::vector<std::vector<crypto::Share>> self_mask_shares_;  // per owner, revealed at R3
  std::vector<std::vector<crypto::Share>> mask_key_shares_;   // per owner, revealed at R3
};

}  // namespace sotto::secagg
