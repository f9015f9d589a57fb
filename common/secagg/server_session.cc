#include "common/secagg/server_session.h"

#include <algorithm>
#include <optional>
#include <span>
#include <utility>

#include "common/crypto/prg.h"
#include "common/crypto/random.h"
#include "common/secagg/client_session.h"
#include "common/secagg/packed_words.h"
#include "common/secagg/share_envelope.h"
#include "common/util/error.h"

namespace sotto::secagg {

namespace {

const char* step_name(int step) {
  static const char* const kNames[] = {"advertise keys", "share keys", "masked input", "unmasking", "done", "aborted"};
  return kNames[step];
}

// The index of the first word at or above 2^bits, if any: one OR over every word (a loop the compiler vectorises),
// and a search only when that finds a high bit.
std::optional<std::size_t> first_word_at_or_above(std::span<const std::uint32_t> y, std::uint32_t bits) {
  if (bits >= 32) return std::nullopt;
  const std::uint32_t high = ~modulus_mask(bits);
  std::uint32_t any = 0;
  for (std::uint32_t w : y) any |= w & high;
  if (any == 0) return std::nullopt;
  return static_cast<std::size_t>(std::find_if(y.begin(), y.end(), [&](std::uint32_t w) { return (w & high) != 0; }) -
                                  y.begin());
}

}  // namespace

ServerSession::ServerSession(RoundConfig config, std::uint64_t max_held_words)
    : config_(config),
      reached_(config.n, Reached::kNothing),
      keys_(config.n),
      max_held_words_(max_held_words),
      excluded_(config.n, false),
      accused_(config.n),
      inbox_(config.n),
      relayed_(config.n),
      self_mask_shares_(config.n),
      mask_key_shares_(config.n) {
  validate_round_config(config_);
  graph_.emplace(config_.n, config_.k, config_.graph_seed);
}

void ServerSession::abort_round(const std::string& why) {
  const int at = static_cast<int>(step_);
  step_ = Step::kAborted;
  inbox_.clear();
  relayed_.clear();
  held_.clear();
  self_mask_shares_.clear();
  mask_key_shares_.clear();
  throw Error("secagg: server, round " + std::to_string(config_.round_id) + ": aborted at step " + step_name(at) +
              ": " + why);
}

void ServerSession::expect(Step step, const char* call) const {
  if (step_ == step) return;
  throw Error("secagg: server, round " + std::to_string(config_.round_id) + ": " + call + " is not accepted at step " +
              step_name(static_cast<int>(step_)));
}

void ServerSession::check_index(ClientIndex index, Reached needed, const char* call) const {
  const std::string where = "secagg: server, round " + std::to_string(config_.round_id) + ": " + call +
                            " from client " + std::to_string(index) + " rejected: ";
  if (index >= config_.n) throw Error(where + "unknown index (n = " + std::to_string(config_.n) + ")");
  if (excluded_[index]) throw Error(where + "it was excluded from the round after an accusation");
  if (reached_[index] > needed) throw Error(where + "it already sent this message");
  if (reached_[index] < needed) throw Error(where + "it dropped out of the round earlier");
}

std::vector<ClientIndex> ServerSession::neighbours_at(ClientIndex i, Reached at_least) const {
  std::vector<ClientIndex> out;
  for (ClientIndex j : graph_->neighbours(i)) {
    if (reached_[j] >= at_least) out.push_back(j);
  }
  return out;
}

std::vector<ClientIndex> ServerSession::dropped_neighbours(ClientIndex i) const {
  std::vector<ClientIndex> out;
  for (ClientIndex j : graph_->neighbours(i)) {
    if (reached_[j] == Reached::kShared) out.push_back(j);
  }
  return out;
}

// What i is asked for at R3: its share of b of each surviving neighbour, of the mask key of each dropped one —
// leaving out the neighbours it accused, whose shares it does not hold.
UnmaskRequest ServerSession::request_for(ClientIndex i) const {
  UnmaskRequest request;
  for (ClientIndex j : graph_->neighbours(i)) {
    if (accused_[i].count(j)) continue;
    if (reached_[j] >= Reached::kMasked) request.survivors.push_back(j);
    if (reached_[j] == Reached::kShared) request.dropped.push_back(j);
  }
  return request;
}

std::size_t ServerSession::share_holders(ClientIndex j) const {
  std::size_t holders = 0;
  for (ClientIndex u : graph_->neighbours(j)) holders += reached_[u] >= Reached::kMasked && !accused_[u].count(j);
  return holders;
}

bool ServerSession::needs_mask_key(ClientIndex d) const {
  if (reached_[d] != Reached::kShared) return false;
  for (ClientIndex j : graph_->neighbours(d)) {
    if (reached_[j] >= Reached::kMasked) return true;
  }
  return false;
}

std::uint32_t ServerSession::masked_inputs() const {
  return static_cast<std::uint32_t>(std::count(reached_.begin(), reached_.end(), Reached::kMasked));
}

// R0 ------------------------------------------------------------------------------------------------------------

void ServerSession::on_advertise(ClientIndex index, const AdvertiseKeys& keys) {
  expect(Step::kAdvertise, "advertised keys");
  check_index(index, Reached::kNothing, "advertised keys");
  const std::string where = "secagg: server, round " + std::to_string(config_.round_id) + ": the keys of client " +
                            std::to_string(index) + " rejected: ";
  const auto around = graph_->neighbours(index);
  if (keys.channel_public.size() != around.size() ||
      !std::equal(around.begin(), around.end(), keys.channel_public.begin(),
                  [](ClientIndex j, const auto& entry) { return entry.first == j; })) {
    throw Error(where + "it must advertise one channel key for each of its " + std::to_string(around.size()) +
                " neighbours, got " + std::to_string(keys.channel_public.size()));
  }
  std::vector<crypto::X25519PublicKey> all{keys.mask_public};
  for (const auto& [j, key] : keys.channel_public) all.push_back(key);
  std::sort(all.begin(), all.end());
  const bool repeated = std::adjacent_find(all.begin(), all.end()) != all.end() ||
                        std::any_of(all.begin(), all.end(), [&](const auto& key) { return seen_keys_.count(key); });
  if (repeated) throw Error(where + "a public key is repeated");
  seen_keys_.insert(all.begin(), all.end());
  keys_[index] = keys;
  reached_[index] = Reached::kAdvertised;
}

std::map<ClientIndex, KeyDirectory> ServerSession::close_advertise() {
  expect(Step::kAdvertise, "closing advertise keys");
  std::size_t advertised = 0;
  for (ClientIndex i = 0; i < config_.n; ++i) advertised += keys_[i] ? 1 : 0;
  if (advertised < config_.t) {
    abort_round(std::to_string(advertised) + " of " + std::to_string(config_.n) +
                " clients advertised keys, below the threshold t = " + std::to_string(config_.t));
  }
  std::map<ClientIndex, KeyDirectory> out;
  for (ClientIndex i = 0; i < config_.n; ++i) {
    if (!keys_[i]) continue;
    auto& directory = out[i];
    for (ClientIndex j : graph_->neighbours(i)) {
      if (keys_[j]) directory.keys.emplace(j, NeighbourKeys{keys_[j]->channel_public.at(i), keys_[j]->mask_public});
    }
  }
  seen_keys_.clear();
  step_ = Step::kShareKeys;
  return out;
}

// R1 ------------------------------------------------------------------------------------------------------------

void ServerSession::on_encrypted_shares(ClientIndex index, const EncryptedShares& shares) {
  expect(Step::kShareKeys, "encrypted shares");
  check_index(index, Reached::kAdvertised, "encrypted shares");
  const std::string where = "secagg: server, round " + std::to_string(config_.round_id) +
                            ": encrypted shares from client " + std::to_string(index) + " rejected: ";
  const auto expected = neighbours_at(index, Reached::kAdvertised);
  std::vector<ClientIndex> recipients;
  recipients.reserve(shares.shares.size());
  for (const auto& share : shares.shares) {
    if (!graph_->are_neighbours(index, share.peer)) {
      throw Error(where + "client " + std::to_string(share.peer) + " is not its neighbour");
    }
    if (share.ciphertext.size() != kShareCiphertextBytes) {
      throw Error(where + "the ciphertext for client " + std::to_string(share.peer) + " has " +
                  std::to_string(share.ciphertext.size()) + " bytes, expected " +
                  std::to_string(kShareCiphertextBytes));
    }
    recipients.push_back(share.peer);
  }
  std::sort(recipients.begin(), recipients.end());
  if (recipients != expected) {
    throw Error(where + "it must address each of its " + std::to_string(expected.size()) +
                " advertised neighbours exactly once, got " + std::to_string(shares.shares.size()) + " ciphertexts");
  }
  for (const auto& share : shares.shares) inbox_[share.peer].push_back({index, share.ciphertext});
  reached_[index] = Reached::kShared;
}

std::map<ClientIndex, SharesForYou> ServerSession::close_share_keys() {
  expect(Step::kShareKeys, "closing share keys");
  std::size_t shared = 0;
  for (ClientIndex i = 0; i < config_.n; ++i) shared += reached_[i] >= Reached::kShared ? 1 : 0;
  if (shared < config_.t) {
    abort_round(std::to_string(shared) + " clients shared keys, below the threshold t = " + std::to_string(config_.t));
  }
  std::map<ClientIndex, SharesForYou> out;
  for (ClientIndex i = 0; i < config_.n; ++i) {
    if (reached_[i] != Reached::kShared) continue;
    // Every sender shared (only sharers deposit); order by sender.
    auto& inbox = inbox_[i];
    std::sort(inbox.begin(), inbox.end(), [](const auto& a, const auto& b) { return a.peer < b.peer; });
    relayed_[i] = inbox;
    out[i].shares = std::move(inbox);
  }
  inbox_.clear();
  inbox_.shrink_to_fit();
  sum_.assign(config_.vector_length, 0);
  step_ = Step::kMaskedInput;
  return out;
}

// R2 ------------------------------------------------------------------------------------------------------------

void ServerSession::on_masked_input(ClientIndex index, MaskedInput input) {
  expect(Step::kMaskedInput, "a masked input");
  check_index(index, Reached::kShared, "a masked input");
  check_masked_input(index, input);
  held_.emplace(index, std::move(input));
  held_order_.push_back(index);
  reached_[index] = Reached::kMasked;
  const auto around = graph_->neighbours(index);
  std::vector<ClientIndex> candidates(around.begin(), around.end());
  candidates.push_back(index);
  add_settled(candidates);
  for (std::size_t next = 0; held_.size() * config_.vector_length > max_held_words_; ++next) {
    if (held_.count(held_order_[next])) add_held(held_order_[next]);
  }
}

// Unpacked words are checked to be below 2^bits; packed ones cannot be anything else, so only their size is.
void ServerSession::check_masked_input(ClientIndex index, const MaskedInput& input) const {
  const std::string rejected = "secagg: server, round " + std::to_string(config_.round_id) +
                               ": the masked input of client " + std::to_string(index) + " rejected: ";
  const std::size_t packed_bytes = masked_input_bytes(config_.vector_length, config_.bits);
  if (!input.y.empty() && !input.packed.empty()) throw Error(rejected + "it has both words and packed words");
  if (input.y.empty() && input.packed.size() != packed_bytes) {
    throw Error(rejected + "it has " + std::to_string(input.packed.size()) + " packed bytes, expected " +
                std::to_string(packed_bytes) + " (" + std::to_string(config_.vector_length) + " words of " +
                std::to_string(config_.bits) + " bits)");
  }
  if (input.y.empty()) return;
  if (input.y.size() != config_.vector_length) {
    throw Error(rejected + "it has " + std::to_string(input.y.size()) + " entries, expected " +
                std::to_string(config_.vector_length));
  }
  if (const auto over = first_word_at_or_above(input.y, config_.bits)) {
    throw Error(rejected + "word " + std::to_string(*over) + " is not below 2^" + std::to_string(config_.bits));
  }
}

void ServerSession::add_held(ClientIndex index) {
  const MaskedInput& input = held_.at(index);
  if (input.y.empty()) {  // mod 2^32, reduced mod 2^bits at the end
    add_packed_words(sum_, {reinterpret_cast<const std::uint8_t*>(input.packed.data()), input.packed.size()},
                     config_.bits);
  } else {
    for (std::size_t i = 0; i < sum_.size(); ++i) sum_[i] += input.y[i];
  }
  held_.erase(index);
}

std::map<ClientIndex, UnmaskRequest> ServerSession::close_masked_input() {
  expect(Step::kMaskedInput, "closing masked input");
  for (ClientIndex index : held_order_) {
    if (held_.count(index)) add_held(index);
  }
  held_order_.clear();
  relayed_.clear();
  std::size_t masked = 0;
  for (ClientIndex i = 0; i < config_.n; ++i) masked += reached_[i] == Reached::kMasked ? 1 : 0;
  if (masked < config_.t) {
    abort_round(std::to_string(masked) +
                " clients sent masked inputs, below the threshold t = " + std::to_string(config_.t));
  }
  std::map<ClientIndex, UnmaskRequest> out;
  for (ClientIndex i = 0; i < config_.n; ++i) {
    if (reached_[i] == Reached::kMasked) {
      const auto holders = share_holders(i);
      if (holders < config_.t) {
        abort_round("survivor " + std::to_string(i) + " has " + std::to_string(holders) +
                    " surviving neighbours to hold its self-mask seed, below the threshold t = " +
                    std::to_string(config_.t));
      }
      out.emplace(i, request_for(i));
    } else if (needs_mask_key(i)) {
      const auto holders = share_holders(i);
      if (holders < config_.t) {
        abort_round("dropped client " + std::to_string(i) + " has " + std::to_string(holders) +
                    " surviving neighbours to hold its mask key, below the threshold t = " + std::to_string(config_.t));
      }
    }
  }
  step_ = Step::kUnmasking;
  return out;
}

// R3 ------------------------------------------------------------------------------------------------------------

void ServerSession::on_unmask_response(ClientIndex index, const UnmaskResponse& response) {
  expect(Step::kUnmasking, "an unmask response");
  check_index(index, Reached::kMasked, "an unmask response");
  const std::string where = "secagg: server, round " + std::to_string(config_.round_id) +
                            ": the unmask response of client " + std::to_string(index) + " rejected: ";
  auto parse = [&](const std::vector<RevealedShare>& revealed, const std::vector<ClientIndex>& expected,
                   const char* what) {
    std::vector<ClientIndex> owners;
    std::vector<crypto::Share> parsed;
    for (const auto& r : revealed) {
      if (!graph_->are_neighbours(index, r.owner)) {
        throw Error(where + what + " of client " + std::to_string(r.owner) + ", not a neighbour");
      }
      crypto::Share share;
      try {
        share = crypto::Share::from_bytes(r.share);
      } catch (const Error& e) {
        throw Error(where + what + " of client " + std::to_string(r.owner) + " is malformed: " + e.what());
      }
      if (share.x != *graph_->rank_of(r.owner, index) + 1) {
        throw Error(where + what + " of client " + std::to_string(r.owner) + " has the wrong x-coordinate");
      }
      owners.push_back(r.owner);
      parsed.push_back(std::move(share));
    }
    auto sorted = owners;
    std::sort(sorted.begin(), sorted.end());
    if (sorted != expected) {
      throw Error(where + "it must reveal " + what + " of exactly the " + std::to_string(expected.size()) +
                  " clients asked for, got " + std::to_string(revealed.size()));
    }
    return std::make_pair(std::move(owners), std::move(parsed));
  };
  const UnmaskRequest asked = request_for(index);
  auto self_masks = parse(response.self_mask_shares, asked.survivors, "a self-mask share");
  auto mask_keys = parse(response.mask_key_shares, asked.dropped, "a mask-key share");
  for (std::size_t i = 0; i < self_masks.first.size(); ++i) {
    self_mask_shares_[self_masks.first[i]].push_back(std::move(self_masks.second[i]));
  }
  for (std::size_t i = 0; i < mask_keys.first.size(); ++i) {
    mask_key_shares_[mask_keys.first[i]].push_back(std::move(mask_keys.second[i]));
  }
  reached_[index] = Reached::kResponded;
}

crypto::OwnedMasks<crypto::ShamirSecret> ServerSession::unmasking_seeds(const std::vector<ClientIndex>& survivors,
                                                            const std::vector<ClientIndex>& dropped) {
  crypto::OwnedMasks<crypto::ShamirSecret> out;
  for (ClientIndex u : survivors) {
    out.add(crypto::reconstruct(self_mask_shares_[u], config_.t), crypto::MaskSign::kSubtract);
  }
  for (ClientIndex d : dropped) {
    const auto private_key = crypto::reconstruct(mask_key_shares_[d], config_.t);
    const auto key_pair = crypto::X25519KeyPair::from_private_bytes(private_key);
    if (key_pair.public_key() != keys_[d]->mask_public) {
      abort_round("the shares of dropped client " + std::to_string(d) +
                  "'s mask key reconstruct a key that does not match its advertised public key");
    }
    for (ClientIndex u : neighbours_at(d, Reached::kMasked)) {
      // u added +PRG(s_ud) if u < d and -PRG(s_ud) otherwise; take it back out.
      out.add(pairwise_mask_seed(key_pair, keys_[u]->mask_public, config_.round_id, u, d),
              u < d ? crypto::MaskSign::kSubtract : crypto::MaskSign::kAdd);
    }
  }
  return out;
}

AggregationResult ServerSession::close_unmasking() {
  expect(Step::kUnmasking, "closing unmasking");
  AggregationResult result;
  std::vector<ClientIndex> dropped;
  for (ClientIndex i = 0; i < config_.n; ++i) {
    if (reached_[i] >= Reached::kMasked) {
      result.survivors.push_back(i);
      if (self_mask_shares_[i].size() < config_.t) {
        abort_round("survivor " + std::to_string(i) + "'s self-mask seed has " +
                    std::to_string(self_mask_shares_[i].size()) +
                    " shares, below the threshold t = " + std::to_string(config_.t));
      }
    } else if (needs_mask_key(i)) {
      dropped.push_back(i);
      if (mask_key_shares_[i].size() < config_.t) {
        abort_round("dropped client " + std::to_string(i) + "'s mask key has " +
                    std::to_string(mask_key_shares_[i].size()) +
                    " shares, below the threshold t = " + std::to_string(config_.t));
      }
    }
  }
  std::size_t responded = 0;
  for (ClientIndex i = 0; i < config_.n; ++i) responded += reached_[i] == Reached::kResponded ? 1 : 0;
  if (responded < config_.t) {
    abort_round(std::to_string(responded) +
                " clients answered the unmask request, below the threshold t = " + std::to_string(config_.t));
  }

  result.sum = std::move(sum_);
  try {
    const auto masks = unmasking_seeds(result.survivors, dropped);
    crypto::add_masks(result.sum, masks.terms());  // one pass over the sum per kMaskGroup masks
  } catch (const Error& e) {
    if (step_ == Step::kAborted) throw;
    abort_round(std::string("unmasking failed: ") + e.what());
  }
  if (config_.bits < 32) {
    const std::uint32_t keep = modulus_mask(config_.bits);
    for (auto& w : result.sum) w &= keep;
  }
  self_mask_shares_.clear();
  mask_key_shares_.clear();
  step_ = Step::kDone;
  return result;
}

}  // namespace sotto::secagg
