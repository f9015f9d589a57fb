#include "simulations/secure_round.h"

#include <array>
#include <string>

#include "common/secagg/client_session.h"
#include "common/secagg/quantizer.h"
#include "common/secagg/update_vector.h"
#include "common/secagg/wire_codec.h"
#include "common/util/error.h"
#include "simulations/cohort_sampler.h"

namespace sotto::sim {

namespace {

using aggregator::Actions;
using aggregator::ConnectionId;
namespace action = aggregator::action;

constexpr std::uint64_t kDropoutTag = 0x64726f706f7574ull;  // "dropout"
constexpr std::uint64_t kCoinTag = 0x636f696e73ull;         // "coins"

double uniform01(std::uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

const char* step_name(RoundStep step) {
  switch (step) {
    case RoundStep::kAdvertiseKeys: return "advertising its keys";
    case RoundStep::kShareKeys: return "sharing its keys";
    case RoundStep::kUpdate: return "sending its masked input";
    case RoundStep::kUnmask: return "answering the unmask request";
  }
  return "?";
}

// The rounding coins' seed for one client's update in one round: reproducible, and distinct per client and round.
std::array<std::uint8_t, 32> coin_seed(std::uint64_t seed, std::uint64_t round_id, ClientIndex client) {
  std::array<std::uint8_t, 32> out{};
  std::uint64_t x = mix64(seed ^ mix64(round_id ^ mix64(client ^ kCoinTag)));
  for (std::size_t word = 0; word < 4; ++word) {
    x = mix64(x + word);
    for (std::size_t b = 0; b < 8; ++b) out[word * 8 + b] = static_cast<std::uint8_t>(x >> (8 * b));
  }
  return out;
}

struct Player {
  secagg::ClientSession session;
  SecureClient client;
};

}  // namespace

std::optional<RoundStep> planned_dropout(const DropoutRates& rates, bool secure, std::uint64_t seed,
                                         std::uint64_t round_id, ClientIndex client) {
  const std::pair<RoundStep, double> steps[] = {{RoundStep::kAdvertiseKeys, rates.advertise_keys},
                                                {RoundStep::kShareKeys, rates.share_keys},
                                                {RoundStep::kUpdate, rates.update},
                                                {RoundStep::kUnmask, rates.unmask}};
  for (const auto& [step, rate] : steps) {
    if (!secure && step != RoundStep::kUpdate) continue;
    const auto s = static_cast<std::uint64_t>(step);
    if (rate > 0 && uniform01(mix64(seed ^ mix64(round_id ^ mix64(client ^ mix64(s ^ kDropoutTag))))) < rate) {
      return step;
    }
  }
  return std::nullopt;
}

action::RoundClosed play_secure_round(aggregator::RoundCoordinator& coordinator, const action::SendTask& task,
                                      std::vector<SecureClient> clients, std::uint64_t seed,
                                      const std::function<aggregator::TimePoint()>& now, aggregator::RoundTraffic& traffic) {
  if (!task.secagg) throw Error("internal: play_secure_round called for a plain round");
  const action::SecAggAssignment& assignment = *task.secagg;
  const secagg::RoundConfig& config = assignment.config;
  const secagg::Quantizer quantizer({assignment.clip_norm, config.n, config.bits});

  auto count_up = [&](int step, std::uint64_t bytes) {
    traffic.secagg_in[step] += bytes;
    traffic.bytes_in += bytes;
  };
  auto count_down = [&](int step, std::uint64_t bytes) {
    traffic.secagg_out[step] += bytes;
    traffic.bytes_out += bytes;
  };
  std::map<ConnectionId, Player> players;
  std::optional<action::RoundClosed> closed;
  Actions next;
  // Keeps the coordinator's answers for the next pass, and notices the round closing.
  auto deliver = [&](Actions more) {
    for (auto& a : more) {
      if (auto* rc = std::get_if<action::RoundClosed>(&a)) {
        closed = std::move(*rc);
      } else if (auto* reject = std::get_if<action::Reject>(&a)) {
        players.erase(reject->conn);  // the coordinator dropped it
      } else {
        next.push_back(std::move(a));
      }
    }
  };
  auto vanish = [&](ConnectionId conn, const std::string& why) {
    players.erase(conn);
    deliver(coordinator.on_disconnect(conn, why, now()));
  };
  // Runs one client's step; a session that refuses the server's message aborts, and the client disconnects.
  auto respond = [&](ConnectionId conn, RoundStep step, const std::function<Actions(Player&)>& body) {
    if (closed) return;
    auto it = players.find(conn);
    if (it == players.end()) return;  // already gone
    if (it->second.client.vanishes == step) return vanish(conn, std::string("simulated dropout before ") + step_name(step));
    Actions answer;
    try {
      answer = body(it->second);
    } catch (const Error& e) {
      return vanish(conn, std::string("the client's secure-aggregation session aborted: ") + e.what());
    }
    deliver(std::move(answer));
  };

  for (auto& c : clients) {
    const ConnectionId conn = c.client;
    if (!c.error.empty()) {
      deliver(coordinator.on_disconnect(conn, "local training failed: " + c.error, now()));
      continue;
    }
    std::vector<std::uint32_t> input;
    if (c.update) {
      const std::vector<float> flat = secagg::flatten_floating(c.update->delta);
      if (flat.size() != config.vector_length) {
        throw Error("internal: the secure round sums " + std::to_string(config.vector_length) +
                    " values, the update has " + std::to_string(flat.size()));
      }
      input = quantizer.encode_with_coin_seed(flat, coin_seed(seed, task.round_id, c.client));
    } else {
      input.assign(config.vector_length, 0);  // never sent: the client vanishes before its masked input
    }
    players.emplace(conn, Player{secagg::ClientSession(config, assignment.index.at(conn), std::move(input)), std::move(c)});
    respond(conn, RoundStep::kAdvertiseKeys, [&](Player& p) {
      const secagg::AdvertiseKeys keys = p.session.start();
      count_up(0, secagg::to_proto(keys).ByteSizeLong());
      return coordinator.on_secagg_advertise(conn, keys, now());
    });
  }

  while (!closed) {
    if (next.empty()) {
      throw Error("internal: the coordinator stopped answering in secure round " + std::to_string(task.round_id));
    }
    Actions pending = std::move(next);
    next.clear();
    for (auto& a : pending) {
      if (closed) break;
      if (const auto* dir = std::get_if<action::SendKeyDirectory>(&a)) {
        count_down(0, secagg::to_proto(dir->directory).ByteSizeLong() * dir->conns.size());
        for (ConnectionId conn : dir->conns) {
          respond(conn, RoundStep::kShareKeys, [&](Player& p) {
            const secagg::EncryptedShares shares = p.session.on_key_directory(dir->directory);
            count_up(1, secagg::to_proto(shares.shares).ByteSizeLong());
            return coordinator.on_secagg_shares(conn, shares.shares, now());
          });
        }
      } else if (const auto* shares = std::get_if<action::SendShares>(&a)) {
        count_down(1, secagg::to_proto(shares->shares).ByteSizeLong());
        respond(shares->conn, RoundStep::kUpdate, [&](Player& p) {
          const secagg::MaskedInput masked = p.session.on_shares(secagg::SharesForYou{shares->shares});
          aggregator::ClientUpdate u = std::move(*p.client.update);  // metrics; the delta becomes the masked input
          p.client.update.reset();
          u.delta = secagg::masked_input_parameters(masked.y, config.bits);
          count_up(2, u.delta.total_bytes());
          return coordinator.on_update(shares->conn, std::move(u), now());
        });
      } else if (const auto* request = std::get_if<action::SendUnmaskRequest>(&a)) {
        count_down(2, secagg::to_proto(request->request).ByteSizeLong());
        respond(request->conn, RoundStep::kUnmask, [&](Player& p) {
          const secagg::UnmaskResponse response = p.session.on_unmask_request(request->request);
          count_up(3, secagg::to_proto(response).ByteSizeLong());
          return coordinator.on_secagg_unmask(request->conn, response, now());
        });
      }
    }
  }
  return std::move(*closed);
}

}  // namespace sotto::sim
