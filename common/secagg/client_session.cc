#include "common/secagg/client_session.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <set>
#include <utility>

#include "common/crypto/hkdf.h"
#include "common/crypto/prg.h"
#include "common/crypto/random.h"
#include "common/util/error.h"

namespace sotto::secagg {

void validate_round_config(const RoundConfig& c) {
  const std::string where = "secagg: round " + std::to_string(c.round_id) + ": ";
  if (c.n < kMinClients) throw Error(where + "secure aggregation needs n >= " + std::to_string(kMinClients) + " clients, got " + std::to_string(c.n));
  if (c.k < 1 || c.k > c.n - 1 || (c.k % 2 != 0 && c.k != c.n - 1)) {
    throw Error(where + "the degree k must be even and in 2..n-2, or n - 1; got k = " + std::to_string(c.k) +
                " for n = " + std::to_string(c.n));
  }
  if (c.t < 2 || c.t > c.k || 2 * static_cast<std::uint64_t>(c.t) <= c.k) {
    throw Error(where + "the threshold t must satisfy k/2 < t <= k and t >= 2; got t = " + std::to_string(c.t) +
                " for k = " + std::to_string(c.k));
  }
  if (c.vector_length < 1 || c.vector_length > (std::uint64_t{1} << 32)) {
    throw Error(where + "the vector length must be in 1..2^32, got " + std::to_string(c.vector_length));
  }
  if (c.bits < 1 || c.bits > 32) {
    throw Error(where + "the modulus is 2^bits with bits in 1..32, got bits = " + std::to_string(c.bits));
  }
}

crypto::SecretArray<kPairwiseSeedBytes> pairwise_mask_seed(const crypto::X25519KeyPair& mine,
                                                           const crypto::X25519PublicKey& peer, std::uint64_t round_id,
                                                           ClientIndex i, ClientIndex j) {
  const auto shared = mine.agree(peer);
  crypto::SecretArray<kPairwiseSeedBytes> seed;
  crypto::hkdf_sha256(shared, {}, pair_key_info(kPairwiseMaskInfo, round_id, i, j), seed);
  return seed;
}

ClientSession::ClientSession(RoundConfig config, ClientIndex my_index, std::vector<std::uint32_t> input,
                             RandomFill random)
    : config_(config), me_(my_index), random_(std::move(random)), input_(std::move(input)) {
  validate_round_config(config_);
  if (me_ >= config_.n) {
    throw Error("secagg: client index " + std::to_string(me_) +
                " is outside 0..n-1 for n = " + std::to_string(config_.n));
  }
  if (input_.size() != config_.vector_length) {
    throw Error("secagg: client " + std::to_string(me_) + "'s input has " + std::to_string(input_.size()) +
                " entries, the round expects " + std::to_string(config_.vector_length));
  }
}

ClientSession::~ClientSession() {
  wipe();
}

void ClientSession::wipe() {
  if (!input_.empty()) OPENSSL_cleanse(input_.data(), input_.size() * sizeof(std::uint32_t));
  input_.clear();
  channel_.clear();
  mask_.reset();
  OPENSSL_cleanse(self_mask_seed_.data(), self_mask_seed_.size());
  channel_keys_.clear();
  held_.clear();
  accused_.clear();
}

void ClientSession::fail(const std::string& why) {
  step_ = Step::kAborted;
  wipe();
  throw Error("secagg: client " + std::to_string(me_) + ", round " + std::to_string(config_.round_id) +
              ": aborted: " + why);
}

void ClientSession::expect(Step step, std::string_view call) {
  if (step_ == step) return;
  if (step_ == Step::kAborted) {
    throw Error("secagg: client " + std::to_string(me_) + ", round " + std::to_string(config_.round_id) + ": " +
                std::string(call) + " after the session aborted");
  }
  // A call out of order (or a repeated message) is itself a protocol violation: abort.
  fail(std::string(call) + " arrived out of order (a repeated or early message)");
}

template <typename F>
auto ClientSession::guarded(F&& body) {
  try {
    return body();
  } catch (const Error& e) {
    if (step_ == Step::kAborted) throw;
    fail(e.what());
  }
}

crypto::X25519KeyPair ClientSession::fresh_key_pair() {
  crypto::SecretArray<crypto::kX25519KeyBytes> private_key;
  random_(private_key);
  return crypto::X25519KeyPair::from_private_bytes(private_key);
}

AdvertiseKeys ClientSession::start() {
  expect(Step::kNew, "start");
  return guarded([&] {
    graph_.emplace(config_.n, config_.k, config_.graph_seed);
    AdvertiseKeys out;
    mask_.emplace(fresh_key_pair());
    out.mask_public = mask_->public_key();
    for (ClientIndex j : graph_->neighbours(me_)) {
      const auto& pair = channel_.emplace(j, fresh_key_pair()).first->second;
      out.channel_public.emplace(j, pair.public_key());
    }
    step_ = Step::kAdvertised;
    return out;
  });
}

EncryptedShares ClientSession::on_key_directory(const KeyDirectory& directory) {
  expect(Step::kAdvertised, "the key directory");
  return guarded([&] { return share_keys(directory); });
}

ClientSession::SharesAnswer ClientSession::on_shares(const SharesForYou& shares) {
  expect(Step::kShared, "the neighbours' shares");
  return guarded([&] { return mask_input(shares); });
}

UnmaskResponse ClientSession::on_unmask_request(const UnmaskRequest& request) {
  expect(Step::kMasked, "the unmask request");
  return guarded([&] { return unmask(request); });
}

EncryptedShares ClientSession::share_keys(const KeyDirectory& directory) {
  std::vector<crypto::X25519PublicKey> seen{mask_->public_key()};
  for (const auto& [j, pair] : channel_) seen.push_back(pair.public_key());
  for (const auto& [j, keys] : directory.keys) {
    if (!graph_->are_neighbours(me_, j)) {
      fail("the key directory carries keys of client " + std::to_string(j) + ", which is not a neighbour");
    }
    neighbour_keys_.emplace(j, keys);
    seen.push_back(keys.channel_public);
    seen.push_back(keys.mask_public);
  }
  if (neighbour_keys_.size() < config_.t) {
    fail("only " + std::to_string(neighbour_keys_.size()) + " of its " + std::to_string(config_.k) +
         " neighbours advertised keys, below the threshold t = " + std::to_string(config_.t));
  }
  std::sort(seen.begin(), seen.end());
  if (std::adjacent_find(seen.begin(), seen.end()) != seen.end()) {
    fail("the key directory repeats a public key among this client's neighbours");
  }

  random_(self_mask_seed_);
  const auto mask_private = mask_->private_bytes();
  const auto self_mask_shares = crypto::split(self_mask_seed_, config_.t, config_.k);
  const auto mask_key_shares = crypto::split(mask_private, config_.t, config_.k);

  EncryptedShares out;
  out.shares.reserve(neighbour_keys_.size());
  for (const auto& [j, keys] : neighbour_keys_) {
    const std::uint32_t rank = *graph_->rank_of(me_, j);
    auto key = channel_key(channel_.at(j), keys.channel_public, config_.round_id, me_, j);
    out.shares.push_back({j, seal_shares(key, config_.round_id, me_, j, self_mask_shares[rank], mask_key_shares[rank])});
    channel_keys_.emplace(j, std::move(key));
  }
  // The channel private keys stay until R2: an accusation reveals those of the accused pairs.
  step_ = Step::kShared;
  return out;
}

// A share that does not open is its sender's fault (share_envelope.h): it is reported, not a reason to abort, and
// the input is still masked with the sender, which shared.
ClientSession::SharesAnswer ClientSession::mask_input(const SharesForYou& shares) {
  std::set<ClientIndex> senders;
  for (const auto& share : shares.shares) {
    const ClientIndex sender = share.peer;
    const auto key = channel_keys_.find(sender);
    if (key == channel_keys_.end()) {
      fail("received shares from client " + std::to_string(sender) + ", which is not an advertised neighbour");
    }
    if (!senders.insert(sender).second) fail("received shares from client " + std::to_string(sender) + " twice");
    const std::uint32_t x = *graph_->rank_of(sender, me_) + 1;
    auto opened = open_shares(key->second, config_.round_id, sender, me_, x, share.ciphertext);
    if (auto* held = std::get_if<HeldShares>(&opened)) {
      held_.emplace(sender, std::move(*held));
    } else {
      accused_.insert(sender);
    }
  }
  if (senders.size() < config_.t) {
    fail("only " + std::to_string(senders.size()) +
         " neighbours sent shares, below the threshold t = " + std::to_string(config_.t));
  }

  SharesAnswer answer;
  if (!accused_.empty()) answer.accusation = accuse();
  answer.input.y = std::move(input_);
  input_.clear();
  auto& y = answer.input.y;
  crypto::OwnedMasks<crypto::SecretArray<kPairwiseSeedBytes>> pair_masks;
  for (ClientIndex j : senders) {
    pair_masks.add(pairwise_mask_seed(*mask_, neighbour_keys_.at(j).mask_public, config_.round_id, me_, j),
                   me_ < j ? crypto::MaskSign::kAdd : crypto::MaskSign::kSubtract);
  }
  std::vector<crypto::MaskTerm> masks{{self_mask_seed_, crypto::MaskSign::kAdd}};
  for (const auto& term : pair_masks.terms()) masks.push_back(term);
  crypto::add_masks(y, masks);  // one pass over y for all of them
  // Reduction mod 2^bits commutes with the additions mod 2^32 (2^bits divides 2^32), so masking mod 2^32 and
  // reducing once gives the input masked mod 2^bits, and the masks still cancel in the reduced sum.
  if (config_.bits < 32) {
    const std::uint32_t keep = modulus_mask(config_.bits);
    for (auto& w : y) w &= keep;
  }
  mask_.reset();
  channel_.clear();
  step_ = Step::kMasked;
  return answer;
}

Accusation ClientSession::accuse() const {
  Accusation out;
  for (ClientIndex j : accused_) out.reveals.push_back({j, channel_.at(j).private_bytes()});
  return out;
}

UnmaskResponse ClientSession::unmask(const UnmaskRequest& request) {
  std::set<ClientIndex> named;
  auto check = [&](const std::vector<ClientIndex>& list, const char* what) {
    for (ClientIndex j : list) {
      if (held_.count(j) == 0) {
        fail(std::string("the unmask request lists client ") + std::to_string(j) + " as " + what +
             ", but it never sent this client shares");
      }
      if (!named.insert(j).second) {
        fail("the unmask request names client " + std::to_string(j) +
             " twice (asking for both of its secrets is refused)");
      }
    }
  };
  check(request.survivors, "a survivor");
  check(request.dropped, "dropped");
  if (named.size() != held_.size()) {
    fail("the unmask request accounts for " + std::to_string(named.size()) + " of the " + std::to_string(held_.size()) +
         " neighbours whose shares this client holds");
  }
  // The neighbours it accused are in neither list (it holds no share of theirs); they may have survived.
  if (request.survivors.size() + accused_.size() < config_.t) {
    fail("only " + std::to_string(request.survivors.size()) +
         " neighbours survived, below the threshold t = " + std::to_string(config_.t));
  }
  UnmaskResponse out;
  for (ClientIndex j : request.survivors) {
    const auto bytes = held_.at(j).self_mask.to_bytes();
    out.self_mask_shares.push_back({j, Bytes(bytes.begin(), bytes.end())});
  }
  for (ClientIndex j : request.dropped) {
    const auto bytes = held_.at(j).mask_key.to_bytes();
    out.mask_key_shares.push_back({j, Bytes(bytes.begin(), bytes.end())});
  }
  step_ = Step::kDone;
  wipe();
  return out;
}

}  // namespace sotto::secagg
