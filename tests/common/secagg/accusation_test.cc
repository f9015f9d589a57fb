// SecAgg+ accusations without a network: an insider that sends garbage shares, a client that accuses falsely or
// with a key that is not its own, and the server's verdicts — with clients vanishing at every step around them —
// and what the revealed pair keys open: nothing but the accused pairs' own ciphertexts.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/crypto/random.h"
#include "common/secagg/client_session.h"
#include "common/secagg/messages.h"
#include "common/secagg/server_session.h"
#include "common/secagg/share_envelope.h"
#include "common/util/error.h"

using namespace sotto::secagg;

namespace {

enum class Vanish { kNever, kAfterAdvertise, kAfterSharing, kAfterMasking };

struct Scenario {
  RoundConfig config;
  std::optional<ClientIndex> garbler;  // flips a byte of the ciphertexts it sends to `victims`
  std::set<ClientIndex> victims;
  bool garbler_masks_first = false;  // its masked input reaches the server before anyone accuses it
  std::map<ClientIndex, Vanish> vanish;
  std::uint64_t max_held_words = ServerSession::kDefaultMaxHeldWords;
};

struct Result {
  std::optional<AggregationResult> aggregation;  // nullopt: the server aborted
  std::vector<ServerSession::Offence> offences;
  std::set<ClientIndex> accusers;
};

std::vector<std::uint32_t> input_of(ClientIndex i, std::uint64_t length) {
  std::vector<std::uint32_t> v(length);
  for (std::size_t w = 0; w < v.size(); ++w) v[w] = 1000u * (i + 1) + static_cast<std::uint32_t>(w);
  return v;
}

bool gone(const Scenario& s, ClientIndex i, Vanish at) {
  auto it = s.vanish.find(i);
  return it != s.vanish.end() && it->second <= at;
}

Result run(const Scenario& s) {
  Result out;
  ServerSession server(s.config, s.max_held_words);
  std::vector<ClientSession> clients;
  for (ClientIndex i = 0; i < s.config.n; ++i) clients.emplace_back(s.config, i, input_of(i, s.config.vector_length));
  try {
    for (ClientIndex i = 0; i < s.config.n; ++i) server.on_advertise(i, clients[i].start());
    const auto directories = server.close_advertise();
    for (ClientIndex i = 0; i < s.config.n; ++i) {
      if (gone(s, i, Vanish::kAfterAdvertise)) continue;
      auto shares = clients[i].on_key_directory(directories.at(i));
      if (s.garbler == i) {
        for (auto& share : shares.shares) {
          if (s.victims.empty() || s.victims.count(share.peer)) share.ciphertext[30] ^= 0x40;
        }
      }
      server.on_encrypted_shares(i, shares);
    }
    auto for_you = server.close_share_keys();
    std::vector<ClientIndex> order;
    for (const auto& [i, unused] : for_you) order.push_back(i);
    if (s.garbler && s.garbler_masks_first) {
      std::stable_partition(order.begin(), order.end(), [&](ClientIndex i) { return i == *s.garbler; });
    } else if (s.garbler) {
      std::stable_partition(order.begin(), order.end(), [&](ClientIndex i) { return i != *s.garbler; });
    }
    for (ClientIndex i : order) {
      if (gone(s, i, Vanish::kAfterSharing)) continue;
      auto answer = clients[i].on_shares(for_you.at(i));
      try {
        if (answer.accusation) {
          out.accusers.insert(i);
          const auto verdict = server.on_accusation(i, *answer.accusation);
          out.offences.insert(out.offences.end(), verdict.offences.begin(), verdict.offences.end());
        }
        server.on_masked_input(i, answer.input);
      } catch (const sotto::Error& e) {  // only a convicted client's late input may be refused
        REQUIRE(std::string(e.what()).find("excluded") != std::string::npos);
      }
    }
    for (const auto& [i, request] : server.close_masked_input()) {
      if (gone(s, i, Vanish::kAfterMasking)) continue;
      try {
        server.on_unmask_response(i, clients[i].on_unmask_request(request));
      } catch (const sotto::Error& e) {
        REQUIRE(std::string(e.what()).find("excluded") != std::string::npos);
      }
    }
    out.aggregation = server.close_unmasking();
  } catch (const sotto::Error& e) {
    REQUIRE(std::string(e.what()).find("aborted") != std::string::npos);
  }
  return out;
}

// The sum holds exactly the listed survivors' inputs.
void check_sum(const Scenario& s, const AggregationResult& r) {
  std::vector<std::uint32_t> expected(s.config.vector_length, 0);
  for (ClientIndex i : r.survivors) {
    const auto v = input_of(i, s.config.vector_length);
    for (std::size_t w = 0; w < v.size(); ++w) expected[w] += v[w];
  }
  REQUIRE(r.sum == expected);
}

std::set<ClientIndex> culprits(const Result& r) {
  std::set<ClientIndex> out;
  for (const auto& o : r.offences) out.insert(o.culprit);
  return out;
}

RoundConfig config_of(std::uint32_t n, std::uint32_t k, std::uint32_t t) {
  return RoundConfig{11, n, k, t, 6};
}

}  // namespace

TEST_CASE("accusation: an insider's garbage shares convict it and the round completes without it and with the accuser",
          "[secagg][accusation]") {
  Scenario s{config_of(7, 6, 4), 2, {5}};
  SECTION("the accusation arrives before the insider's masked input") { s.garbler_masks_first = false; }
  SECTION("its masked input arrives first: held apart, then left out") { s.garbler_masks_first = true; }
  const Result r = run(s);
  REQUIRE(r.accusers == std::set<ClientIndex>{5});
  REQUIRE(culprits(r) == std::set<ClientIndex>{2});
  REQUIRE_FALSE(r.offences[0].input_counted);
  REQUIRE(r.offences[0].what.find("do not authenticate") != std::string::npos);
  REQUIRE(r.aggregation);
  REQUIRE(r.aggregation->survivors == std::vector<ClientIndex>{0, 1, 3, 4, 5, 6});
  check_sum(s, *r.aggregation);
}

TEST_CASE("accusation: garbage to every neighbour convicts the insider and nobody honest is blamed",
          "[secagg][accusation]") {
  Scenario s{config_of(5, 4, 3), 0, {}};
  const Result r = run(s);
  REQUIRE(r.accusers == std::set<ClientIndex>{1, 2, 3, 4});
  REQUIRE(culprits(r) == std::set<ClientIndex>{0});
  // Nobody holds a share of the insider's mask key, so its pairwise masks cannot be taken out: the round aborts.
  REQUIRE_FALSE(r.aggregation);
}

TEST_CASE("accusation: with no room to hold inputs apart the insider's input stays in the sum",
          "[secagg][accusation]") {
  Scenario s{config_of(7, 6, 4), 2, {5}, true};
  s.max_held_words = 0;
  const Result r = run(s);
  REQUIRE(culprits(r) == std::set<ClientIndex>{2});
  REQUIRE(r.offences[0].input_counted);
  REQUIRE(r.aggregation);
  REQUIRE(r.aggregation->survivors == std::vector<ClientIndex>{0, 1, 2, 3, 4, 5, 6});
  check_sum(s, *r.aggregation);
}

namespace {

// A client's session with every private key it draws recorded, to play a lying accuser.
struct Recorded {
  std::vector<std::array<std::uint8_t, 32>> draws;
  ClientSession::RandomFill fill() {
    return [this](std::span<std::uint8_t> out) {
      sotto::crypto::random_bytes(out);
      if (out.size() == 32) std::copy(out.begin(), out.end(), draws.emplace_back().begin());
    };
  }
  // The drawn private key whose public key is `public_key`.
  sotto::crypto::SecretArray<32> private_of(const sotto::crypto::X25519PublicKey& public_key) const {
    for (const auto& d : draws) {
      sotto::crypto::SecretArray<32> key;
      std::copy(d.begin(), d.end(), key.begin());
      if (sotto::crypto::X25519KeyPair::from_private_bytes(key).public_key() == public_key) return key;
    }
    FAIL("no drawn key has that public key");
    return {};
  }
};

}  // namespace

TEST_CASE("accusation: a false accusation or a key that is not the accuser's convicts the accuser",
          "[secagg][accusation]") {
  const RoundConfig config = config_of(5, 4, 3);
  ServerSession server(config);
  Recorded liar;
  std::vector<ClientSession> clients;
  for (ClientIndex i = 0; i < config.n; ++i) {
    clients.emplace_back(config, i, input_of(i, config.vector_length),
                         i == 3 ? liar.fill() : ClientSession::RandomFill(sotto::crypto::random_bytes));
  }
  std::vector<AdvertiseKeys> keys;
  for (ClientIndex i = 0; i < config.n; ++i) server.on_advertise(i, keys.emplace_back(clients[i].start()));
  const auto directories = server.close_advertise();
  for (ClientIndex i = 0; i < config.n; ++i) {
    server.on_encrypted_shares(i, clients[i].on_key_directory(directories.at(i)));
  }
  auto for_you = server.close_share_keys();
  const auto pair_key = liar.private_of(keys[3].channel_public.at(1));
  const Accusation lie{{{1, pair_key}}};

  SECTION("malformed accusations are refused and change nothing") {
    REQUIRE_THROWS_WITH(server.on_accusation(3, Accusation{}), Catch::Contains("no one"));
    REQUIRE_THROWS_WITH(server.on_accusation(3, Accusation{{{3, pair_key}}}), Catch::Contains("sent it no shares"));
    REQUIRE_THROWS_WITH(server.on_accusation(3, Accusation{{{2, pair_key}, {1, pair_key}}}),
                        Catch::Contains("sorted"));
    server.on_masked_input(3, clients[3].on_shares(for_you.at(3)).input);  // still a member
    REQUIRE_THROWS_WITH(server.on_accusation(3, lie), Catch::Contains("already sent"));  // after its input
  }
  SECTION("shares that open convict the accuser") {
    const auto verdict = server.on_accusation(3, lie);
    REQUIRE(verdict.offences.size() == 1);
    REQUIRE(verdict.offences[0].culprit == 3);
    REQUIRE(verdict.offences[0].what.find("falsely") != std::string::npos);
    REQUIRE_THROWS_WITH(server.on_masked_input(3, clients[3].on_shares(for_you.at(3)).input),
                        Catch::Contains("excluded"));
  }
  SECTION("a key that is not the advertised one convicts the accuser") {
    Accusation wrong = lie;
    wrong.reveals[0].channel_private[5] ^= 1;  // (not byte 0's low bits, which X25519 clamps away)
    const auto verdict = server.on_accusation(3, wrong);
    REQUIRE(verdict.offences.size() == 1);
    REQUIRE(verdict.offences[0].culprit == 3);
    REQUIRE(verdict.offences[0].what.find("not the one it advertised") != std::string::npos);
  }
  SECTION("the key of another pair convicts the accuser") {
    const Accusation other{{{1, liar.private_of(keys[3].channel_public.at(2))}}};
    const auto verdict = server.on_accusation(3, other);
    REQUIRE(verdict.offences.size() == 1);
    REQUIRE(verdict.offences[0].culprit == 3);
  }
  if (server.finished() || server.aborted()) return;
  // Either way the round goes on; the accuser is out unless its accusation was refused.
  for (ClientIndex i : {0, 1, 2, 4}) server.on_masked_input(i, clients[i].on_shares(for_you.at(i)).input);
  for (const auto& [i, request] : server.close_masked_input()) {
    server.on_unmask_response(i, clients[i].on_unmask_request(request));
  }
  const auto result = server.close_unmasking();
  std::vector<std::uint32_t> expected(config.vector_length, 0);
  for (ClientIndex i : result.survivors) {
    for (std::size_t w = 0; w < expected.size(); ++w) expected[w] += input_of(i, config.vector_length)[w];
  }
  REQUIRE(result.sum == expected);
  REQUIRE_THROWS_AS(server.on_accusation(0, lie), sotto::Error);  // the step is over
}

// The attack pair keys stop: an insider garbles its shares to t of an honest client's neighbours, so that all of
// them accuse. Were a reveal to open every share its accuser received, a curious server would then hold t shares
// of the honest client's self-mask seed and mask key, enough to unmask its input. With pair keys each reveal opens
// only the pair with the insider: the server can open none of the honest client's ciphertexts.
TEST_CASE("accusation: the revealed pair keys open only the accused pairs' ciphertexts however many accuse",
          "[secagg][accusation]") {
  const RoundConfig config = config_of(7, 6, 4);
  constexpr ClientIndex kInsider = 2;
  const std::set<ClientIndex> victims{1, 3, 4, 5};  // t = 4 of the neighbours of the target, client 0
  ServerSession server(config);
  std::vector<ClientSession> clients;
  for (ClientIndex i = 0; i < config.n; ++i) clients.emplace_back(config, i, input_of(i, config.vector_length));
  std::vector<AdvertiseKeys> keys;
  for (ClientIndex i = 0; i < config.n; ++i) server.on_advertise(i, keys.emplace_back(clients[i].start()));
  const auto directories = server.close_advertise();
  std::map<std::pair<ClientIndex, ClientIndex>, Bytes> sent;  // (sender, recipient) -> ciphertext
  for (ClientIndex i = 0; i < config.n; ++i) {
    auto shares = clients[i].on_key_directory(directories.at(i));
    for (auto& share : shares.shares) {
      if (i == kInsider && victims.count(share.peer)) share.ciphertext[30] ^= 0x40;
      sent[{i, share.peer}] = share.ciphertext;
    }
    server.on_encrypted_shares(i, shares);
  }
  auto for_you = server.close_share_keys();
  std::vector<std::pair<ClientIndex, PairKeyReveal>> reveals;  // (accuser, reveal)
  for (ClientIndex i = 0; i < config.n; ++i) {
    auto answer = clients[i].on_shares(for_you.at(i));
    if (answer.accusation) {
      for (const auto& r : answer.accusation->reveals) reveals.emplace_back(i, r);
      const auto verdict = server.on_accusation(i, *answer.accusation);
      REQUIRE(verdict.offences.size() == 1);
      REQUIRE(verdict.offences[0].culprit == kInsider);
    }
    if (i != kInsider) server.on_masked_input(i, answer.input);
  }
  REQUIRE(reveals.size() == victims.size());
  // Everything the server holds: the revealed keys, every public key, every ciphertext it relayed. Each revealed
  // key, with any public key it could be paired with, opens exactly one relayed ciphertext — the accuser's own
  // shares for the insider, which the insider holds — and none of the target's.
  const auto opens = [&](const sotto::crypto::X25519KeyPair& revealed, ClientIndex accuser, ClientIndex sender,
                         ClientIndex recipient, const Bytes& ciphertext) {
    const std::uint32_t x = *server.graph().rank_of(sender, recipient) + 1;
    for (const auto& advertised : keys) {
      for (const auto& [peer, their_key] : advertised.channel_public) {
        const ClientIndex other = sender == accuser ? recipient : sender;
        const auto key = channel_key(revealed, their_key, config.round_id, accuser, other);
        if (std::holds_alternative<HeldShares>(open_shares(key, config.round_id, sender, recipient, x, ciphertext))) {
          return true;
        }
      }
    }
    return false;
  };
  for (const auto& [accuser, reveal] : reveals) {
    REQUIRE(reveal.accused == kInsider);
    const auto revealed = sotto::crypto::X25519KeyPair::from_private_bytes(reveal.channel_private);
    std::set<std::pair<ClientIndex, ClientIndex>> opened;
    for (const auto& [pair, ciphertext] : sent) {
      if (opens(revealed, accuser, pair.first, pair.second, ciphertext)) opened.insert(pair);
    }
    REQUIRE(opened == std::set<std::pair<ClientIndex, ClientIndex>>{{accuser, kInsider}});
  }
  // An insider that garbles to t of its k neighbours leaves fewer than t holders of its own mask key (t > k/2):
  // convicted and excluded, its masks cannot come out, and the round aborts — with nobody honest blamed.
  REQUIRE_THROWS_WITH(server.close_masked_input(), Catch::Contains("dropped client 2"));
}

TEST_CASE("accusation: the sum stays exact and only the insider is convicted under random dropouts",
          "[secagg][accusation]") {
  std::mt19937 pick(2026);  // chooses the scenarios, not anything secret
  int completed = 0;
  for (int round = 0; round < 60; ++round) {
    Scenario s{round % 2 ? config_of(9, 6, 4) : config_of(9, 8, 5), static_cast<ClientIndex>(pick() % 9), {}};
    for (int v = 0; v < 2; ++v) s.victims.insert(static_cast<ClientIndex>(pick() % 9));
    s.victims.erase(*s.garbler);
    if (s.victims.empty()) s.victims.insert((*s.garbler + 1) % 9);
    s.garbler_masks_first = pick() % 2;
    for (int d = 0; d < 2; ++d) {
      const auto who = static_cast<ClientIndex>(pick() % 9);
      if (who != *s.garbler) s.vanish[who] = static_cast<Vanish>(1 + pick() % 3);
    }
    const Result r = run(s);
    REQUIRE(culprits(r).size() <= 1);
    if (!r.offences.empty()) REQUIRE(r.offences[0].culprit == *s.garbler);
    for (ClientIndex a : r.accusers) REQUIRE(s.victims.count(a));
    if (r.aggregation) {
      ++completed;
      check_sum(s, *r.aggregation);
      for (ClientIndex a : r.accusers) {  // accusers stay in the round unless they vanished
        const bool survived = std::count(r.aggregation->survivors.begin(), r.aggregation->survivors.end(), a);
        REQUIRE(survived != gone(s, a, Vanish::kAfterSharing));
      }
    }
  }
  REQUIRE(completed > 20);
}
