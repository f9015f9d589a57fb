#include "common/secagg/wire_codec.h"

#include <algorithm>
#include <set>
#include <string>

#include "common/util/error.h"

namespace sotto::secagg {

namespace {

template <std::size_t N>
std::array<std::uint8_t, N> fixed(const std::string& bytes, const char* field) {
  if (bytes.size() != N) {
    throw Error(std::string("secure aggregation message: ") + field + " has " + std::to_string(bytes.size()) +
                " bytes, expected " + std::to_string(N));
  }
  std::array<std::uint8_t, N> out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

template <std::size_t N>
std::string str(const std::array<std::uint8_t, N>& a) {
  return std::string(a.begin(), a.end());
}

std::string str(const Bytes& b) { return std::string(b.begin(), b.end()); }
Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

void check_unique(const std::vector<ClientIndex>& indices, const char* field) {
  std::set<ClientIndex> seen;
  for (auto i : indices) {
    if (!seen.insert(i).second) {
      throw Error(std::string("secure aggregation message: ") + field + " lists client " + std::to_string(i) + " twice");
    }
  }
}

std::vector<RevealedShare> revealed(const google::protobuf::RepeatedPtrField<v1::SecAggUnmaskResponse::Revealed>& in,
                                    const char* field) {
  std::vector<RevealedShare> out;
  std::vector<ClientIndex> owners;
  for (const auto& r : in) {
    out.push_back({r.owner(), bytes(r.share())});
    owners.push_back(r.owner());
  }
  check_unique(owners, field);
  return out;
}

}  // namespace

v1::SecAggAdvertise to_proto(const AdvertiseKeys& m) {
  v1::SecAggAdvertise p;
  p.set_mask_public(str(m.mask_public));
  for (const auto& [peer, key] : m.channel_public) {
    auto* e = p.add_channel_keys();
    e->set_peer(peer);
    e->set_channel_public(str(key));
  }
  return p;
}

AdvertiseKeys from_proto(const v1::SecAggAdvertise& p) {
  AdvertiseKeys m;
  m.mask_public = fixed<crypto::kX25519KeyBytes>(p.mask_public(), "mask_public");
  for (const auto& e : p.channel_keys()) {
    if (!m.channel_public.emplace(e.peer(), fixed<crypto::kX25519KeyBytes>(e.channel_public(), "channel_public"))
             .second) {
      throw Error("secure aggregation message: advertised keys: a channel key for client " + std::to_string(e.peer()) +
                  " twice");
    }
  }
  return m;
}

v1::SecAggKeyDirectory to_proto(const KeyDirectory& m) {
  v1::SecAggKeyDirectory p;
  for (const auto& [index, keys] : m.keys) {
    auto* e = p.add_keys();
    e->set_index(index);
    e->set_channel_public(str(keys.channel_public));
    e->set_mask_public(str(keys.mask_public));
  }
  return p;
}

KeyDirectory from_proto(const v1::SecAggKeyDirectory& p) {
  KeyDirectory m;
  for (const auto& e : p.keys()) {
    NeighbourKeys keys{fixed<crypto::kX25519KeyBytes>(e.channel_public(), "channel_public"),
                       fixed<crypto::kX25519KeyBytes>(e.mask_public(), "mask_public")};
    if (!m.keys.emplace(e.index(), keys).second) {
      throw Error("secure aggregation message: the key directory lists client " + std::to_string(e.index()) + " twice");
    }
  }
  return m;
}

v1::SecAggShares to_proto(const std::vector<EncryptedShare>& shares) {
  v1::SecAggShares p;
  for (const auto& s : shares) {
    auto* e = p.add_shares();
    e->set_peer(s.peer);
    e->set_ciphertext(str(s.ciphertext));
  }
  return p;
}

std::vector<EncryptedShare> from_proto(const v1::SecAggShares& p) {
  std::vector<EncryptedShare> out;
  std::vector<ClientIndex> peers;
  for (const auto& e : p.shares()) {
    out.push_back({e.peer(), bytes(e.ciphertext())});
    peers.push_back(e.peer());
  }
  check_unique(peers, "shares");
  return out;
}

v1::SecAggUnmaskRequest to_proto(const UnmaskRequest& m) {
  v1::SecAggUnmaskRequest p;
  for (auto i : m.survivors) p.add_survivors(i);
  for (auto i : m.dropped) p.add_dropped(i);
  return p;
}

UnmaskRequest from_proto(const v1::SecAggUnmaskRequest& p) {
  UnmaskRequest m;
  m.survivors.assign(p.survivors().begin(), p.survivors().end());
  m.dropped.assign(p.dropped().begin(), p.dropped().end());
  check_unique(m.survivors, "survivors");
  check_unique(m.dropped, "dropped");
  return m;
}

v1::SecAggUnmaskResponse to_proto(const UnmaskResponse& m) {
  v1::SecAggUnmaskResponse p;
  for (const auto& r : m.self_mask_shares) {
    auto* e = p.add_self_mask_shares();
    e->set_owner(r.owner);
    e->set_share(str(r.share));
  }
  for (const auto& r : m.mask_key_shares) {
    auto* e = p.add_mask_key_shares();
    e->set_owner(r.owner);
    e->set_share(str(r.share));
  }
  return p;
}

UnmaskResponse from_proto(const v1::SecAggUnmaskResponse& p) {
  return {revealed(p.self_mask_shares(), "self_mask_shares"), revealed(p.mask_key_shares(), "mask_key_shares")};
}

v1::SecAggAccusation to_proto(const Accusation& m) {
  v1::SecAggAccusation p;
  for (const auto& r : m.reveals) {
    auto* e = p.add_reveals();
    e->set_accused(r.accused);
    e->set_channel_private_key(std::string(r.channel_private.begin(), r.channel_private.end()));
  }
  return p;
}

Accusation from_proto(const v1::SecAggAccusation& p) {
  Accusation m;
  std::vector<ClientIndex> accused;
  for (const auto& e : p.reveals()) {
    PairKeyReveal r;
    r.accused = e.accused();
    const auto key = fixed<crypto::kX25519KeyBytes>(e.channel_private_key(), "accusation: channel_private_key");
    std::copy(key.begin(), key.end(), r.channel_private.begin());
    m.reveals.push_back(r);
    accused.push_back(e.accused());
  }
  if (accused.empty()) throw Error("secure aggregation message: accusation: it accuses no one");
  if (!std::is_sorted(accused.begin(), accused.end())) {
    throw Error("secure aggregation message: accusation: the accused are not in ascending order");
  }
  check_unique(accused, "accusation: accused");
  return m;
}

}  // namespace sotto::secagg
