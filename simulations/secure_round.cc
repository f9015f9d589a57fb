#include "simulations/secure_round.h"

#include <array>
#include <string>

#include "common/round/message_codec.h"
#include "common/round/participant.h"
#include "common/secagg/step.h"
#include "common/secagg/update_vector.h"
#include "common/secagg/wire_codec.h"
#include "common/util/error.h"
#include "simulations/cohort_sampler.h"
#include "simulations/training_pool.h"

namespace sotto::sim {

namespace {

using aggregator::Actions;
using aggregator::ConnectionId;
using secagg::Step;
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

// A simulated device's randomness: the rounding coins' seed above, so that the run is reproducible.
class CoinSeedSource final : public round::RandomSource {
 public:
  explicit CoinSeedSource(std::array<std::uint8_t, 32> seed) : seed_(seed) {}
  void fill(std::span<std::uint8_t> out) override {
    if (out.size() != seed_.size()) throw Error("internal: the participant drew other randomness than its coin seed");
    std::copy(seed_.begin(), seed_.end(), out.begin());
  }

 private:
  std::array<std::uint8_t, 32> seed_;
};

// One simulated client: the very Participant a device runs, fed in memory.
struct Player {
  Player(SecureClient c, std::array<std::uint8_t, 32> seed)
      : client(std::move(c)), coins(seed), participant({"client-" + std::to_string(client.client), std::nullopt}, coins) {}
  SecureClient client;
  CoinSeedSource coins;
  round::Participant participant;
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

  auto count_up = [&](Step step, std::uint64_t bytes) {
    traffic.secagg_in[step] += bytes;
    traffic.bytes_in += bytes;
  };
  auto count_down = [&](Step step, std::uint64_t bytes) {
    traffic.secagg_out[step] += bytes;
    traffic.bytes_out += bytes;
  };
  std::map<ConnectionId, std::unique_ptr<Player>> players;
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
  // Carries a participant's outputs to the coordinator, counting their bytes as the daemon does. A participant
  // that reports an error (its session refused a message) disconnects, as a device would.
  auto carry_out = [&](ConnectionId conn, round::Outputs outputs) {
    for (auto& o : outputs) {
      if (closed || !players.contains(conn)) return;
      if (auto* keys = std::get_if<round::out::AdvertiseKeys>(&o)) {
        count_up(Step::kAdvertiseKeys, secagg::to_proto(keys->keys).ByteSizeLong());
        deliver(coordinator.on_secagg_advertise(conn, keys->keys, now()));
      } else if (auto* shares = std::get_if<round::out::ShareKeys>(&o)) {
        count_up(Step::kShareKeys, secagg::to_proto(shares->shares).ByteSizeLong());
        deliver(coordinator.on_secagg_shares(conn, shares->shares, now()));
      } else if (auto* upload = std::get_if<round::out::Upload>(&o)) {
        aggregator::MaskedUpload u{summary_of(*upload), std::get<secagg::MaskedInput>(std::move(upload->payload))};
        count_up(Step::kMaskedInput, secagg::masked_input_bytes(u.input.y.size(), upload->bits));
        deliver(coordinator.on_masked_input(conn, std::move(u), now()));
      } else if (auto* response = std::get_if<round::out::UnmaskResponse>(&o)) {
        count_up(Step::kUnmasking, secagg::to_proto(response->response).ByteSizeLong());
        deliver(coordinator.on_secagg_unmask(conn, response->response, now()));
      } else if (auto* error = std::get_if<round::out::ReportError>(&o)) {
        return vanish(conn, "the client's secure-aggregation session aborted: " + error->message);
      }
    }
  };
  // Runs one client's step unless its dropout plan says it vanishes instead.
  auto respond = [&](ConnectionId conn, RoundStep step, const std::function<round::Outputs(round::Participant&)>& body) {
    if (closed) return;
    auto it = players.find(conn);
    if (it == players.end()) return;  // already gone
    if (it->second->client.vanishes == step) return vanish(conn, std::string("simulated dropout before ") + step_name(step));
    carry_out(conn, body(it->second->participant));
  };

  round::Task round_task;
  round_task.round_id = task.round_id;
  round_task.plan = task.plan;
  round_task.global_model = task.model;
  round_task.secure = round::SecureAssignment{config, 0, assignment.clip_norm};
  for (auto& c : clients) {
    const ConnectionId conn = c.client;
    if (!c.error.empty()) {
      deliver(coordinator.on_disconnect(conn, "local training failed: " + c.error, now()));
      continue;
    }
    round::Fitted fitted;
    if (c.update) {
      fitted.delta = c.update->delta;
      fitted.metrics = {c.update->num_examples, 0, c.update->train_loss, c.update->train_accuracy,
                        c.update->train_seconds, 0};
    } else {
      fitted.delta = model::subtract(*task.model, *task.model);  // never sent: it vanishes before its masked input
    }
    auto player = std::make_unique<Player>(std::move(c), coin_seed(seed, task.round_id, conn));
    round_task.secure->my_index = assignment.index.at(conn);
    player->participant.on_task(round_task, now());  // asks for the training the pool has done
    players.emplace(conn, std::move(player));
    respond(conn, RoundStep::kAdvertiseKeys, [&](round::Participant& participant) {
      return participant.on_fitted(std::move(fitted), now());
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
        count_down(Step::kAdvertiseKeys, secagg::to_proto(dir->directory).ByteSizeLong() * dir->conns.size());
        for (ConnectionId conn : dir->conns) {
          respond(conn, RoundStep::kShareKeys, [&](round::Participant& p) { return p.on_key_directory(dir->directory, now()); });
        }
      } else if (const auto* shares = std::get_if<action::SendShares>(&a)) {
        count_down(Step::kShareKeys, secagg::to_proto(shares->shares).ByteSizeLong());
        respond(shares->conn, RoundStep::kUpdate, [&](round::Participant& p) { return p.on_shares({shares->shares}, now()); });
      } else if (const auto* request = std::get_if<action::SendUnmaskRequest>(&a)) {
        count_down(Step::kMaskedInput, secagg::to_proto(request->request).ByteSizeLong());
        respond(request->conn, RoundStep::kUnmask,
                [&](round::Participant& p) { return p.on_unmask_request(request->request, now()); });
      }
    }
  }
  return std::move(*closed);
}

}  // namespace sotto::sim
