// SecAgg+ end to end without a network: n ClientSessions and a ServerSession exchange messages in memory, with
// clients vanishing at every step, and a server that misbehaves.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/secagg/client_session.h"
#include "common/secagg/graph.h"
#include "common/secagg/messages.h"
#include "common/secagg/packed_words.h"
#include "common/secagg/parameters.h"
#include "common/secagg/server_session.h"
#include "common/util/error.h"

using namespace sotto::secagg;

namespace {

// When a client vanishes: it sends nothing from that point on.
enum class Vanish { kNever, kBeforeAdvertise, kAfterAdvertise, kAfterSharing, kAfterMasking };

struct Outcome {
  std::optional<AggregationResult> result;  // nullopt: the server aborted
  std::string error;
  std::set<ClientIndex> masked;                           // sent a masked input
  std::set<ClientIndex> client_aborts;                    // clients that refused to go on
  std::vector<std::vector<std::uint32_t>> masked_inputs;  // in order of arrival
  std::optional<NeighbourGraph> graph;
};

// The same masked input as it travels: its words packed at `bits`.
MaskedInput packed(const MaskedInput& words, std::uint32_t bits) {
  const auto bytes = sotto::secagg::pack_words(words.y, bits);
  MaskedInput out;
  for (std::uint8_t b : bytes) out.packed.push_back(static_cast<std::byte>(b));
  return out;
}

Outcome run_round(const RoundConfig& config, const std::vector<std::vector<std::uint32_t>>& inputs,
                  const std::vector<Vanish>& vanish) {
  Outcome out;
  ServerSession server(config);
  std::vector<ClientSession> clients;
  for (ClientIndex i = 0; i < config.n; ++i) clients.emplace_back(config, i, inputs[i]);
  auto gone = [&](ClientIndex i, Vanish at) { return vanish[i] != Vanish::kNever && vanish[i] <= at; };
  try {
    for (ClientIndex i = 0; i < config.n; ++i) {
      if (!gone(i, Vanish::kBeforeAdvertise)) server.on_advertise(i, clients[i].start());
    }
    const auto directories = server.close_advertise();
    out.graph.emplace(config.n, config.k, config.graph_seed);
    for (const auto& [i, directory] : directories) {
      if (gone(i, Vanish::kAfterAdvertise)) continue;
      try {
        auto shares = clients[i].on_key_directory(directory);
        server.on_encrypted_shares(i, shares);
      } catch (const sotto::Error&) {
        REQUIRE(clients[i].aborted());
        out.client_aborts.insert(i);
      }
    }
    for (const auto& [i, shares] : server.close_share_keys()) {
      if (gone(i, Vanish::kAfterSharing)) continue;
      try {
        auto masked = clients[i].on_shares(shares).input;
        out.masked_inputs.push_back(masked.y);
        // Odd clients' inputs arrive packed at the round's width, as they travel; even ones' as words.
        server.on_masked_input(i, i % 2 == 1 ? packed(masked, config.bits) : masked);
        out.masked.insert(i);
      } catch (const sotto::Error&) {
        REQUIRE(clients[i].aborted());
        out.client_aborts.insert(i);
      }
    }
    for (const auto& [i, request] : server.close_masked_input()) {
      if (gone(i, Vanish::kAfterMasking)) continue;
      server.on_unmask_response(i, clients[i].on_unmask_request(request));  // an honest server: no refusal
    }
    out.result = server.close_unmasking();
  } catch (const sotto::Error& e) {
    REQUIRE(server.aborted());
    out.error = e.what();
  }
  return out;
}

// What the protocol must do, from the graph and the vanishing pattern alone.
struct Prediction {
  bool succeeds = false;
  std::set<ClientIndex> masked;
  std::set<ClientIndex> client_aborts;
};

Prediction predict(const RoundConfig& c, const NeighbourGraph& g, const std::vector<Vanish>& vanish) {
  Prediction p;
  auto count_in = [&](ClientIndex i, const std::set<ClientIndex>& s) {
    std::uint32_t m = 0;
    for (ClientIndex j : g.neighbours(i)) m += s.count(j) ? 1 : 0;
    return m;
  };
  auto stays = [&](ClientIndex i, Vanish at) { return vanish[i] == Vanish::kNever || vanish[i] > at; };
  std::set<ClientIndex> advertised, shared, masked, responded;
  for (ClientIndex i = 0; i < c.n; ++i) {
    if (stays(i, Vanish::kBeforeAdvertise)) advertised.insert(i);
  }
  if (advertised.size() < c.t) return p;
  for (ClientIndex i : advertised) {
    if (!stays(i, Vanish::kAfterAdvertise)) continue;
    if (count_in(i, advertised) >= c.t)
      shared.insert(i);
    else
      p.client_aborts.insert(i);
  }
  if (shared.size() < c.t) return p;
  for (ClientIndex i : shared) {
    if (!stays(i, Vanish::kAfterSharing)) continue;
    if (count_in(i, shared) >= c.t)
      masked.insert(i);
    else
      p.client_aborts.insert(i);
  }
  p.masked = masked;
  if (masked.size() < c.t) return p;
  auto carries_masks = [&](ClientIndex d) { return shared.count(d) && !masked.count(d) && count_in(d, masked) > 0; };
  for (ClientIndex i = 0; i < c.n; ++i) {
    if ((masked.count(i) || carries_masks(i)) && count_in(i, masked) < c.t) return p;
  }
  for (ClientIndex i : masked) {
    if (stays(i, Vanish::kAfterMasking)) responded.insert(i);
  }
  for (ClientIndex i = 0; i < c.n; ++i) {
    if ((masked.count(i) || carries_masks(i)) && count_in(i, responded) < c.t) return p;
  }
  p.succeeds = true;
  return p;
}

// Seeded, deterministic choices for the tests themselves (dropout patterns, test inputs), never for anything the
// protocol keeps secret: every key, mask and share comes from common/crypto. SplitMix64 (Steele et al. 2014).
struct PatternGenerator {
  using result_type = std::uint64_t;
  explicit PatternGenerator(std::uint64_t seed) : state(seed) {}
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }
  result_type operator()() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::uint64_t state;
};

std::vector<std::vector<std::uint32_t>> random_inputs(PatternGenerator& rng, std::uint32_t n, std::size_t length) {
  std::vector<std::vector<std::uint32_t>> inputs(n, std::vector<std::uint32_t>(length));
  for (auto& v : inputs) {
    for (auto& x : v) x = static_cast<std::uint32_t>(rng());
  }
  return inputs;
}

std::vector<std::uint32_t> plain_sum(const std::vector<std::vector<std::uint32_t>>& inputs,
                                     const std::set<ClientIndex>& who) {
  std::vector<std::uint32_t> sum(inputs.front().size(), 0);
  for (ClientIndex i : who) {
    for (std::size_t j = 0; j < sum.size(); ++j) sum[j] += inputs[i][j];
  }
  return sum;
}

// Each client vanishes at a uniformly chosen step with probability `rate`.
std::vector<Vanish> random_vanishing(PatternGenerator& rng, std::uint32_t n, double rate) {
  std::bernoulli_distribution drops(rate);
  std::uniform_int_distribution<int> step(1, 4);
  std::vector<Vanish> vanish(n, Vanish::kNever);
  for (auto& v : vanish) {
    if (drops(rng)) v = static_cast<Vanish>(step(rng));
  }
  return vanish;
}

struct Tally {
  int cases = 0;
  int succeeded = 0;
  int aborted = 0;
};

void run_random_cases(const RoundConfig& config, int cases, std::uint32_t seed, Tally& tally) {
  PatternGenerator rng(seed);
  const double rates[] = {0.0, 0.05, 0.1, 0.2, 0.35, 0.6};
  for (int c = 0; c < cases; ++c) {
    const double rate = rates[c % 6];
    const auto inputs = random_inputs(rng, config.n, config.vector_length);
    const auto vanish = random_vanishing(rng, config.n, rate);
    CAPTURE(config.n, config.k, config.t, c, rate);
    const Outcome outcome = run_round(config, inputs, vanish);
    ++tally.cases;
    if (!outcome.graph) {  // aborted before the graph existed: too few advertised
      REQUIRE_FALSE(outcome.result);
      ++tally.aborted;
      continue;
    }
    const Prediction expected = predict(config, *outcome.graph, vanish);
    CAPTURE(outcome.error);
    REQUIRE(outcome.client_aborts == expected.client_aborts);
    REQUIRE(outcome.result.has_value() == expected.succeeds);
    if (rate == 0.0) REQUIRE(outcome.result.has_value());
    if (!outcome.result) {
      ++tally.aborted;
      continue;
    }
    ++tally.succeeded;
    REQUIRE(outcome.masked == expected.masked);
    REQUIRE(std::set<ClientIndex>(outcome.result->survivors.begin(), outcome.result->survivors.end()) ==
            outcome.masked);
    std::vector<std::uint32_t> expected_sum = plain_sum(inputs, outcome.masked);
    for (auto& w : expected_sum) w &= sotto::secagg::modulus_mask(config.bits);
    REQUIRE(outcome.result->sum == expected_sum);
    for (const auto& y : outcome.masked_inputs) {
      REQUIRE(std::all_of(y.begin(), y.end(), [&](std::uint32_t w) { return w <= sotto::secagg::modulus_mask(config.bits); }));
    }
  }
}

RoundConfig config_of(std::uint32_t n, std::uint32_t k, std::uint32_t t, std::uint64_t length,
                      std::uint64_t round = 7) {
  return RoundConfig{round, n, k, t, length};
}

// A round driven by hand up to the unmask requests, for the misbehaving-server tests.
struct HandDriven {
  RoundConfig config;
  ServerSession server;
  std::vector<ClientSession> clients;
  std::map<ClientIndex, KeyDirectory> directories;
  std::map<ClientIndex, SharesForYou> shares;
  std::map<ClientIndex, UnmaskRequest> requests;

  explicit HandDriven(const RoundConfig& c, std::set<ClientIndex> vanish_after_advertise = {}) : config(c), server(c) {
    for (ClientIndex i = 0; i < c.n; ++i) clients.emplace_back(c, i, std::vector<std::uint32_t>(c.vector_length, i));
    for (ClientIndex i = 0; i < c.n; ++i) server.on_advertise(i, clients[i].start());
    directories = server.close_advertise();
    for (ClientIndex i = 0; i < c.n; ++i) {
      if (!vanish_after_advertise.count(i)) {
        server.on_encrypted_shares(i, clients[i].on_key_directory(directories.at(i)));
      }
    }
    shares = server.close_share_keys();
  }
  void mask_all() {
    for (const auto& [i, s] : shares) server.on_masked_input(i, clients[i].on_shares(s).input);
    requests = server.close_masked_input();
  }
};

}  // namespace

TEST_CASE("protocol: the recovered sum equals the survivors' plain sum under random dropouts with n = 3 and 10",
          "[secagg][protocol]") {
  Tally tally;
  run_random_cases(config_of(3, 2, 2, 16), 90, 301, tally);
  run_random_cases(config_of(10, 9, 5, 32), 90, 1001, tally);  // complete graph: complete_graph_parameters(10, .)
  const auto plus = find_parameters(10, 0.1, 0.05);            // k = 4, t = 3
  run_random_cases(config_of(10, plus.k, plus.t, 32), 90, 1002, tally);
  run_random_cases(config_of(10, 4, 3, 32, 8), 60, 1003, tally);
  WARN("n = 3 and 10: " << tally.cases << " rounds, " << tally.succeeded << " recovered, " << tally.aborted
                        << " aborted");
  REQUIRE(tally.succeeded > tally.cases / 2);
  REQUIRE(tally.aborted > 20);
}

TEST_CASE("protocol: the recovered sum equals the survivors' plain sum under random dropouts with n = 50",
          "[secagg][protocol]") {
  Tally tally;
  const auto complete = complete_graph_parameters(50, 0.3);  // k = 49, t = 25
  run_random_cases(config_of(50, complete.k, complete.t, 24), 12, 5001, tally);
  const auto plus = find_parameters(50, 0.1, 0.05);  // k = 12, t = 7
  REQUIRE(plus.k < 49);
  run_random_cases(config_of(50, plus.k, plus.t, 48), 42, 5002, tally);
  WARN("n = 50: " << tally.cases << " rounds, " << tally.succeeded << " recovered, " << tally.aborted << " aborted");
  REQUIRE(tally.succeeded > tally.cases / 2);
}

TEST_CASE("protocol: with a modulus of 2^bits the masked inputs stay below it and the sum is exact mod 2^bits",
          "[secagg][protocol]") {
  Tally tally;
  for (std::uint32_t bits : {8u, 20u, 31u}) {
    RoundConfig c = config_of(10, 4, 3, 32);
    c.bits = bits;
    run_random_cases(c, 36, 2000 + bits, tally);
  }
  REQUIRE(tally.succeeded > tally.cases / 2);
  RoundConfig bad = config_of(10, 4, 3, 32);
  bad.bits = 33;
  REQUIRE_THROWS_WITH(ServerSession(bad), Catch::Contains("bits"));
  // A masked input word at or above 2^bits is refused, and the sender is not counted.
  RoundConfig c = config_of(5, 4, 3, 4);
  c.bits = 16;
  HandDriven round(c);
  REQUIRE_THROWS_WITH(round.server.on_masked_input(0, MaskedInput{{1, 2, 65536, 3}}), Catch::Contains("2^16"));
  // Packed, its size is what is checked (no packed word can reach 2^bits); and one form only.
  MaskedInput short_packed = packed(MaskedInput{{1, 2, 3}}, 16);
  REQUIRE_THROWS_WITH(round.server.on_masked_input(0, short_packed),
                      Catch::Contains("6 packed bytes, expected 8 (4 words of 16 bits)"));
  MaskedInput both = packed(MaskedInput{{1, 2, 3, 4}}, 16);
  both.y = {1, 2, 3, 4};
  REQUIRE_THROWS_WITH(round.server.on_masked_input(0, both), Catch::Contains("both words and packed words"));
  REQUIRE_THROWS_WITH(round.server.on_masked_input(0, MaskedInput{}), Catch::Contains("0 packed bytes"));
  round.server.on_masked_input(0, packed(MaskedInput{{1, 2, 3, 4}}, 16));  // the refusals changed nothing
}

TEST_CASE("protocol: the recovered sum equals the survivors' plain sum with n = 200 and the SecAgg+ degree",
          "[secagg][protocol]") {
  Tally tally;
  const auto plus = find_parameters(200, 0.1, 0.05);  // k = 28, t = 15
  REQUIRE(plus.k < 50);
  run_random_cases(config_of(200, plus.k, plus.t, 16), 4, 20001, tally);
  REQUIRE(tally.succeeded >= 3);
}

TEST_CASE("protocol: a round aborts cleanly when too many clients vanish at any step", "[secagg][protocol]") {
  const RoundConfig config = config_of(10, 9, 5, 16);
  PatternGenerator rng(42);
  const auto inputs = random_inputs(rng, 10, 16);
  for (Vanish at : {Vanish::kBeforeAdvertise, Vanish::kAfterAdvertise, Vanish::kAfterSharing, Vanish::kAfterMasking}) {
    std::vector<Vanish> vanish(10, Vanish::kNever);
    for (ClientIndex i = 0; i < 6; ++i) vanish[i] = at;  // 4 left, below t = 5
    const Outcome outcome = run_round(config, inputs, vanish);
    CAPTURE(static_cast<int>(at), outcome.error);
    REQUIRE_FALSE(outcome.result);
    REQUIRE(outcome.error.find("aborted") != std::string::npos);
    REQUIRE(outcome.error.find("threshold t = 5") != std::string::npos);
  }
  // Each survivor's self-mask seed needs t surviving holders other than itself: with t + 1 = 6 survivors of the
  // complete graph the sum is recovered, with t = 5 the round aborts.
  for (ClientIndex vanished : {4u, 5u}) {
    std::vector<Vanish> vanish(10, Vanish::kNever);
    std::set<ClientIndex> survivors;
    for (ClientIndex i = 0; i < 10; ++i) {
      if (i < vanished)
        vanish[i] = Vanish::kAfterSharing;
      else
        survivors.insert(i);
    }
    const Outcome outcome = run_round(config, inputs, vanish);
    REQUIRE(outcome.result.has_value() == (vanished == 4));
    if (outcome.result) REQUIRE(outcome.result->sum == plain_sum(inputs, survivors));
  }
}

TEST_CASE("protocol: a client refuses an unmask request that asks for both secrets of one peer", "[secagg][protocol]") {
  HandDriven round(config_of(6, 5, 3, 8));
  round.mask_all();
  UnmaskRequest greedy = round.requests.at(0);
  REQUIRE(greedy.dropped.empty());
  const ClientIndex peer = greedy.survivors.front();
  greedy.dropped.push_back(peer);
  REQUIRE_THROWS_WITH(round.clients[0].on_unmask_request(greedy), Catch::Contains("both"));
  REQUIRE(round.clients[0].aborted());
  // An aborted client stays aborted: not even the honest request gets an answer now.
  REQUIRE_THROWS_AS(round.clients[0].on_unmask_request(round.requests.at(0)), sotto::Error);

  // Listing one peer twice as dropped, or a survivor that never sent shares, is refused too.
  UnmaskRequest twice = round.requests.at(1);
  twice.survivors.push_back(twice.survivors.front());
  REQUIRE_THROWS_AS(round.clients[1].on_unmask_request(twice), sotto::Error);
  REQUIRE(round.clients[1].aborted());
}

TEST_CASE("protocol: a client refuses a survivor that never sent it shares", "[secagg][protocol]") {
  HandDriven round(config_of(6, 5, 3, 8), {4});  // client 4 advertised but never shared
  round.mask_all();
  UnmaskRequest forged = round.requests.at(0);
  forged.survivors.push_back(4);
  REQUIRE_THROWS_WITH(round.clients[0].on_unmask_request(forged), Catch::Contains("never sent"));
  // The server's own request is consistent and the round completes with the others.
  for (const auto& [i, request] : round.requests) {
    if (i != 0) round.server.on_unmask_response(i, round.clients[i].on_unmask_request(request));
  }
  const auto result = round.server.close_unmasking();
  REQUIRE(result.survivors == std::vector<ClientIndex>{0, 1, 2, 3, 5});
  REQUIRE(result.sum == std::vector<std::uint32_t>(8, 0 + 1 + 2 + 3 + 5));
}

// A ciphertext that does not open is its sender's fault as far as the recipient can tell: the recipient accuses
// the sender (revealing its channel key) and leaves; the server's judgement is tested in accusation_test.cc.
TEST_CASE("protocol: a client accuses the senders of tampered or misaddressed ciphertexts", "[secagg][protocol]") {
  HandDriven round(config_of(5, 4, 3, 8));
  auto shares = round.shares.at(0);
  std::vector<ClientIndex> expected;
  SECTION("a flipped byte") {
    shares.shares[1].ciphertext[20] ^= 1;
    expected = {shares.shares[1].peer};
  }
  SECTION("a share relabelled as coming from another neighbour") {
    std::swap(shares.shares[0].ciphertext, shares.shares[1].ciphertext);
    expected = {shares.shares[0].peer, shares.shares[1].peer};
  }
  SECTION("a share meant for someone else") {
    const ClientIndex sender = shares.shares[2].peer;
    for (const auto& s : round.shares.at(1).shares) {
      if (s.peer == sender) shares.shares[2].ciphertext = s.ciphertext;  // sealed by the same sender, for client 1
    }
    expected = {sender};
  }
  SECTION("a truncated ciphertext") {
    shares.shares[0].ciphertext.resize(30);
    expected = {shares.shares[0].peer};
  }
  std::sort(expected.begin(), expected.end());
  auto answer = round.clients[0].on_shares(shares);
  REQUIRE(answer.accusation);
  std::vector<ClientIndex> accused;
  for (const auto& reveal : answer.accusation->reveals) accused.push_back(reveal.accused);
  REQUIRE(accused == expected);
  CHECK(answer.input.y.size() == round.config.vector_length);  // it stays in the round, its input masked
  REQUIRE_FALSE(round.clients[0].aborted());
}

TEST_CASE("protocol: shares from one sender twice abort the client", "[secagg][protocol]") {
  HandDriven round(config_of(5, 4, 3, 8));
  auto shares = round.shares.at(0);
  shares.shares.push_back(shares.shares[0]);
  REQUIRE_THROWS_WITH(round.clients[0].on_shares(shares), Catch::Contains("twice"));
  REQUIRE(round.clients[0].aborted());
}

TEST_CASE("protocol: clients reject out-of-order and repeated messages and a directory with a stranger's keys",
          "[secagg][protocol]") {
  const RoundConfig config = config_of(5, 4, 3, 8);
  ServerSession server(config);
  std::vector<ClientSession> clients;
  for (ClientIndex i = 0; i < 5; ++i) clients.emplace_back(config, i, std::vector<std::uint32_t>(8, 1));
  REQUIRE_THROWS_AS(clients[0].on_shares(SharesForYou{}), sotto::Error);  // before start()
  REQUIRE(clients[0].aborted());
  REQUIRE_THROWS_AS(clients[0].start(), sotto::Error);  // aborted for good

  for (ClientIndex i = 1; i < 5; ++i) server.on_advertise(i, clients[i].start());
  REQUIRE_THROWS_AS(clients[1].start(), sotto::Error);  // start twice
  REQUIRE(clients[1].aborted());

  const auto directories = server.close_advertise();  // 4 advertised (client 0 aborted)
  REQUIRE_NOTHROW(clients[2].on_key_directory(directories.at(2)));
  REQUIRE_THROWS_AS(clients[2].on_key_directory(directories.at(2)), sotto::Error);  // repeated
  KeyDirectory with_me = directories.at(3);
  with_me.keys[3] = with_me.keys.begin()->second;  // k = n - 1: the one index that is not a neighbour is its own
  REQUIRE_THROWS_WITH(clients[3].on_key_directory(with_me), Catch::Contains("not a neighbour"));
  KeyDirectory replayed = directories.at(4);
  const ClientIndex first = replayed.keys.begin()->first;
  replayed.keys[first == 1 ? 2 : 1] = replayed.keys.at(first);  // a neighbour's keys repeated under another index
  REQUIRE_THROWS_WITH(clients[4].on_key_directory(replayed), Catch::Contains("repeats"));

  REQUIRE_THROWS_AS(ClientSession(config, 5, std::vector<std::uint32_t>(8)), sotto::Error);  // index >= n
  REQUIRE_THROWS_AS(ClientSession(config, 0, std::vector<std::uint32_t>(7)), sotto::Error);  // wrong length
  REQUIRE_THROWS_AS(ClientSession(config_of(5, 4, 2, 8), 0, std::vector<std::uint32_t>(8)), sotto::Error);  // t<=k/2
  REQUIRE_THROWS_AS(ClientSession(config_of(5, 3, 2, 8), 0, std::vector<std::uint32_t>(8)), sotto::Error);  // odd k
}

TEST_CASE("protocol: a client aborts when fewer than t neighbours advertised or shared", "[secagg][protocol]") {
  const RoundConfig config = config_of(10, 4, 3, 8);
  ServerSession server(config);
  std::vector<ClientSession> clients;
  for (ClientIndex i = 0; i < 10; ++i) clients.emplace_back(config, i, std::vector<std::uint32_t>(8, 1));
  std::map<ClientIndex, AdvertiseKeys> keys;
  for (ClientIndex i = 0; i < 10; ++i) keys[i] = clients[i].start();
  for (ClientIndex i = 0; i < 10; ++i) server.on_advertise(i, keys[i]);
  const auto directories = server.close_advertise();
  const auto neighbours = server.graph().neighbours(0);
  KeyDirectory thin = directories.at(0);
  thin.keys.erase(neighbours[0]);
  thin.keys.erase(neighbours[1]);  // 2 of 4 neighbours left, t = 3
  REQUIRE_THROWS_WITH(clients[0].on_key_directory(thin), Catch::Contains("below the threshold"));

  REQUIRE_NOTHROW(clients[1].on_key_directory(directories.at(1)));
  REQUIRE_THROWS_WITH(clients[1].on_shares(SharesForYou{}), Catch::Contains("below the threshold"));
}

TEST_CASE("protocol: the server rejects duplicate out-of-order unknown and malformed messages without harm",
          "[secagg][protocol]") {
  const RoundConfig config = config_of(10, 4, 3, 16);
  PatternGenerator rng(9);
  const auto inputs = random_inputs(rng, 10, 16);
  ServerSession server(config);
  std::vector<ClientSession> clients;
  for (ClientIndex i = 0; i < 10; ++i) clients.emplace_back(config, i, inputs[i]);

  std::vector<AdvertiseKeys> keys;
  for (ClientIndex i = 0; i < 10; ++i) keys.push_back(clients[i].start());
  REQUIRE_THROWS_AS(server.on_masked_input(0, MaskedInput{std::vector<std::uint32_t>(16)}), sotto::Error);
  REQUIRE_THROWS_AS(server.close_share_keys(), sotto::Error);
  REQUIRE_THROWS_AS(server.on_advertise(10, keys[0]), sotto::Error);  // unknown index
  {
    AdvertiseKeys short_of_one = keys[0];
    short_of_one.channel_public.erase(short_of_one.channel_public.begin());
    REQUIRE_THROWS_WITH(server.on_advertise(0, short_of_one), Catch::Contains("one channel key for each"));
    AdvertiseKeys stranger = short_of_one;
    ClientIndex not_neighbour = 1;
    while (server.graph().are_neighbours(0, not_neighbour)) ++not_neighbour;
    stranger.channel_public[not_neighbour] = keys[0].channel_public.begin()->second;
    REQUIRE_THROWS_WITH(server.on_advertise(0, stranger), Catch::Contains("one channel key for each"));
    AdvertiseKeys reused = keys[0];
    reused.channel_public.begin()->second = reused.mask_public;
    REQUIRE_THROWS_WITH(server.on_advertise(0, reused), Catch::Contains("repeated"));
    AdvertiseKeys borrowed = keys[0];
    borrowed.channel_public.begin()->second = keys[1].mask_public;  // another client's key, advertised below
    server.on_advertise(1, keys[1]);
    REQUIRE_THROWS_WITH(server.on_advertise(0, borrowed), Catch::Contains("repeated"));
  }
  for (ClientIndex i = 0; i < 10; ++i) {
    if (i != 1) server.on_advertise(i, keys[i]);
  }
  REQUIRE_THROWS_AS(server.on_advertise(3, keys[3]), sotto::Error);  // duplicate
  const auto directories = server.close_advertise();
  REQUIRE_THROWS_AS(server.on_advertise(3, keys[3]), sotto::Error);  // late
  REQUIRE_FALSE(server.aborted());

  std::vector<EncryptedShares> sent(10);
  for (ClientIndex i = 0; i < 10; ++i) sent[i] = clients[i].on_key_directory(directories.at(i));
  {
    EncryptedShares wrong = sent[0];
    ClientIndex stranger = 1;
    while (server.graph().are_neighbours(0, stranger)) ++stranger;
    wrong.shares[0].peer = stranger;  // addressed to a non-neighbour
    REQUIRE_THROWS_WITH(server.on_encrypted_shares(0, wrong), Catch::Contains("not its neighbour"));
    EncryptedShares partial = sent[0];
    partial.shares.pop_back();
    REQUIRE_THROWS_AS(server.on_encrypted_shares(0, partial), sotto::Error);
    EncryptedShares doubled = sent[0];
    doubled.shares[1] = doubled.shares[0];
    REQUIRE_THROWS_AS(server.on_encrypted_shares(0, doubled), sotto::Error);
    EncryptedShares short_ct = sent[0];
    short_ct.shares[0].ciphertext.pop_back();
    REQUIRE_THROWS_AS(server.on_encrypted_shares(0, short_ct), sotto::Error);
  }
  for (ClientIndex i = 0; i < 10; ++i) server.on_encrypted_shares(i, sent[i]);
  REQUIRE_THROWS_AS(server.on_encrypted_shares(2, sent[2]), sotto::Error);  // duplicate
  auto shares = server.close_share_keys();

  std::vector<MaskedInput> masked(10);
  for (ClientIndex i = 0; i < 10; ++i) masked[i] = clients[i].on_shares(shares.at(i)).input;
  REQUIRE_THROWS_WITH(server.on_masked_input(0, MaskedInput{std::vector<std::uint32_t>(15)}),
                      Catch::Contains("entries"));
  for (ClientIndex i = 0; i < 10; ++i) server.on_masked_input(i, masked[i]);
  REQUIRE_THROWS_AS(server.on_masked_input(4, masked[4]), sotto::Error);  // duplicate: must not be added twice
  REQUIRE_THROWS_AS(server.close_unmasking(), sotto::Error);              // out of order
  auto requests = server.close_masked_input();

  std::vector<UnmaskResponse> responses(10);
  for (ClientIndex i = 0; i < 10; ++i) responses[i] = clients[i].on_unmask_request(requests.at(i));
  {
    UnmaskResponse missing = responses[0];
    missing.self_mask_shares.pop_back();
    REQUIRE_THROWS_AS(server.on_unmask_response(0, missing), sotto::Error);
    UnmaskResponse garbled = responses[0];
    garbled.self_mask_shares[0].share.resize(3);
    REQUIRE_THROWS_WITH(server.on_unmask_response(0, garbled), Catch::Contains("malformed"));
    UnmaskResponse moved = responses[0];
    moved.self_mask_shares[0].share[3] ^= 0x40;  // another x-coordinate (big-endian, low byte), still valid
    REQUIRE_THROWS_WITH(server.on_unmask_response(0, moved), Catch::Contains("x-coordinate"));
  }
  for (ClientIndex i = 0; i < 10; ++i) server.on_unmask_response(i, responses[i]);
  REQUIRE_THROWS_AS(server.on_unmask_response(1, responses[1]), sotto::Error);  // duplicate
  const auto result = server.close_unmasking();
  std::set<ClientIndex> everyone;
  for (ClientIndex i = 0; i < 10; ++i) everyone.insert(i);
  REQUIRE(result.sum == plain_sum(inputs, everyone));
  REQUIRE_THROWS_AS(server.close_unmasking(), sotto::Error);
}

TEST_CASE("protocol: masked all-zero inputs look uniform to the server", "[secagg][protocol]") {
  const std::uint64_t length = 1 << 16;
  const RoundConfig config = config_of(10, 9, 5, length);
  const std::vector<std::vector<std::uint32_t>> zeros(10, std::vector<std::uint32_t>(length, 0));
  const Outcome outcome = run_round(config, zeros, std::vector<Vanish>(10, Vanish::kNever));
  REQUIRE(outcome.result);
  REQUIRE(outcome.result->sum == std::vector<std::uint32_t>(length, 0));
  REQUIRE(outcome.masked_inputs.size() == 10);

  auto chi_square = [&](const std::vector<std::uint32_t>& y) {
    std::vector<double> buckets(256, 0);
    for (std::uint32_t v : y) buckets[v & 0xff] += 1;
    const double expected = static_cast<double>(y.size()) / 256;
    double chi2 = 0;
    for (double b : buckets) chi2 += (b - expected) * (b - expected) / expected;
    return chi2;
  };
  // 255 degrees of freedom: mean 255, standard deviation about 22.6; 400 is more than 6 deviations out.
  for (const auto& y : outcome.masked_inputs) {
    const double chi2 = chi_square(y);
    CAPTURE(chi2);
    REQUIRE(chi2 > 120);
    REQUIRE(chi2 < 400);
  }
  REQUIRE(chi_square(zeros[0]) > 400);  // the test tells an unmasked vector apart
}
