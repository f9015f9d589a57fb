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

// The seed of one client's randomness in one round (its rounding coins, SecAgg+ keys and self-mask seed):
// reproducible, and distinct per client and round.
std::array<std::uint8_t, 32> coin_seed(std::uint64_t seed, std::uint64_t round_id, ClientIndex client) {
  std::array<std::uint8_t, 32> out{};
  std::uint64_t x = mix64(seed ^ mix64(round_id ^ mix64(client ^ kCoinTag)));
  for (std::size_t word = 0; word < 4; ++word) {
    x = mix64(x + word);
    for (std::size_t b = 0; b < 8; ++b) out[word * 8 + b] = static_cast<std::uint8_t>(x >> (8 * b));
  }
  return out;
}

// One simulated client: the very Participant a device runs, fed in memory.
struct Player {
  Player(SecureClient c, std::array<std::uint8_t, 32> seed)
      : client(std::move(c)),
        random(std::span<const std::uint8_t, 32>(seed)),
        participant(options_of(client), random) {}
  // A virtual client reports what it measured on its held-out examples (the participant drops it under noise).
  static round::ParticipantOptions options_of(const SecureClient& c) {
    round::ParticipantOptions options{"client-" + std::to_string(c.client), std::nullopt};
    options.report_local_evaluation = true;
    return options;
  }
  SecureClient client;
  round::SeededRandom random;  // a simulated device's coins, keys and self-mask seed: reproducible from the run's seed
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

namespace {

// One secure round played in memory: the cohort's participants, the coordinator's answers still to hand out, and the
// round's end once the coordinator closes it.
class SecureRoundPlay {
 public:
  SecureRoundPlay(aggregator::RoundCoordinator& coordinator, const action::SendTask& task,
                  const std::function<aggregator::TimePoint()>& now, aggregator::RoundTraffic& traffic)
      : coordinator_(coordinator), task_(task), now_(now), traffic_(traffic) {}

  action::RoundClosed play(std::vector<SecureClient> clients, std::uint64_t seed) {
    for (auto& c : clients) start_client(std::move(c), seed);
    while (!closed_) {
      if (next_.empty()) {
        throw Error("internal: the coordinator stopped answering in secure round " + std::to_string(task_.round_id));
      }
      Actions pending = std::move(next_);
      next_.clear();
      for (auto& a : pending) {
        if (closed_) break;
        hand_out(a);
      }
    }
    return std::move(*closed_);
  }

 private:
  void count_up(Step step, std::uint64_t bytes) {
    traffic_.secagg_in[step] += bytes;
    traffic_.bytes_in += bytes;
  }
  void count_down(Step step, std::uint64_t bytes) {
    traffic_.secagg_out[step] += bytes;
    traffic_.bytes_out += bytes;
  }

  // Keeps the coordinator's answers for the next pass, and notices the round closing.
  void deliver(Actions more) {
    for (auto& a : more) {
      if (auto* rc = std::get_if<action::RoundClosed>(&a)) {
        closed_ = std::move(*rc);
      } else if (auto* reject = std::get_if<action::Reject>(&a)) {
        players_.erase(reject->conn);  // the coordinator dropped it
      } else {
        next_.push_back(std::move(a));
      }
    }
  }

  void vanish(ConnectionId conn, const std::string& why) {
    players_.erase(conn);
    deliver(coordinator_.on_disconnect(conn, why, now_()));
  }

  // A participant's task and the training the pool did for it; then its first step.
  void start_client(SecureClient c, std::uint64_t seed) {
    const ConnectionId conn = c.client;
    if (!c.error.empty()) {
      deliver(coordinator_.on_disconnect(conn, "local training failed: " + c.error, now_()));
      return;
    }
    round::Fitted fitted;
    if (c.update) {
      fitted.delta = c.update->delta;
      fitted.metrics = {c.update->num_examples, 0, c.update->train_loss, c.update->train_accuracy,
                        c.update->train_seconds, 0};
      fitted.local_evaluation = c.update->local_evaluation;
    } else {
      fitted.delta = model::subtract(*task_.model, *task_.model);  // never sent: it vanishes before its masked input
    }
    const action::SecAggAssignment& assignment = *task_.secagg;
    round::Task round_task;
    round_task.round_id = task_.round_id;
    round_task.plan = task_.plan;
    round_task.global_model = task_.model;
    round_task.secure = round::SecureAssignment{assignment.config, assignment.index.at(conn), assignment.clip_norm,
                                                assignment.bound, assignment.noise, assignment.evaluation_bins};
    auto player = std::make_unique<Player>(std::move(c), coin_seed(seed, task_.round_id, conn));
    const round::Outputs asked = player->participant.on_task(round_task, now_());  // the training the pool has done
    for (const auto& o : asked) {
      if (const auto* finish = std::get_if<round::out::Finish>(&o)) {  // it refused the task, as a device would
        deliver(coordinator_.on_disconnect(conn, "the participant refused the task: " + finish->message, now_()));
        return;
      }
    }
    players_.emplace(conn, std::move(player));
    respond(conn, RoundStep::kAdvertiseKeys,
            [&](round::Participant& participant) { return participant.on_fitted(std::move(fitted), now_()); });
  }

  // Runs one client's step unless its dropout plan says it vanishes instead.
  void respond(ConnectionId conn, RoundStep step, const std::function<round::Outputs(round::Participant&)>& body) {
    if (closed_) return;
    auto it = players_.find(conn);
    if (it == players_.end()) return;  // already gone
    if (it->second->client.vanishes == step) {
      vanish(conn, std::string("simulated dropout before ") + step_name(step));
      return;
    }
    carry_out(conn, body(it->second->participant));
  }

  // Carries a participant's outputs to the coordinator, counting their bytes as the daemon does. A participant
  // that reports an error (its session refused a message) disconnects, as a device would.
  void carry_out(ConnectionId conn, round::Outputs outputs) {
    for (auto& o : outputs) {
      if (closed_ || !players_.contains(conn)) return;
      if (auto* keys = std::get_if<round::out::AdvertiseKeys>(&o)) {
        count_up(Step::kAdvertiseKeys, secagg::to_proto(keys->keys).ByteSizeLong());
        deliver(coordinator_.on_secagg_advertise(conn, keys->keys, now_()));
      } else if (auto* shares = std::get_if<round::out::ShareKeys>(&o)) {
        count_up(Step::kShareKeys, secagg::to_proto(shares->shares).ByteSizeLong());
        deliver(coordinator_.on_secagg_shares(conn, shares->shares, now_()));
      } else if (auto* upload = std::get_if<round::out::Upload>(&o)) {
        aggregator::MaskedUpload u{summary_of(*upload), std::get<secagg::MaskedInput>(std::move(upload->payload))};
        count_up(Step::kMaskedInput, secagg::masked_input_bytes(u.input.y.size(), upload->bits));
        deliver(coordinator_.on_masked_input(conn, std::move(u), now_()));
      } else if (auto* accuse = std::get_if<round::out::Accuse>(&o)) {
        count_up(Step::kMaskedInput, secagg::to_proto(accuse->accusation).ByteSizeLong());
        deliver(coordinator_.on_secagg_accusation(conn, accuse->accusation, now_()));
      } else if (auto* response = std::get_if<round::out::UnmaskResponse>(&o)) {
        count_up(Step::kUnmasking, secagg::to_proto(response->response).ByteSizeLong());
        deliver(coordinator_.on_secagg_unmask(conn, response->response, now_()));
      } else if (auto* error = std::get_if<round::out::ReportError>(&o)) {
        vanish(conn, "the client's secure-aggregation session aborted: " + error->message);
        return;
      }
    }
  }

  // One of the coordinator's messages, to the participants it names.
  void hand_out(const aggregator::Action& a) {
    if (const auto* dir = std::get_if<action::SendKeyDirectory>(&a)) {
      count_down(Step::kAdvertiseKeys, secagg::to_proto(dir->directory).ByteSizeLong());
      respond(dir->conn, RoundStep::kShareKeys,
              [&](round::Participant& p) { return p.on_key_directory(dir->directory, now_()); });
    } else if (const auto* shares = std::get_if<action::SendShares>(&a)) {
      count_down(Step::kShareKeys, secagg::to_proto(shares->shares).ByteSizeLong());
      respond(shares->conn, RoundStep::kUpdate, [&](round::Participant& p) { return p.on_shares({shares->shares}, now_()); });
    } else if (const auto* request = std::get_if<action::SendUnmaskRequest>(&a)) {
      count_down(Step::kMaskedInput, secagg::to_proto(request->request).ByteSizeLong());
      respond(request->conn, RoundStep::kUnmask,
              [&](round::Participant& p) { return p.on_unmask_request(request->request, now_()); });
    }
  }

  aggregator::RoundCoordinator& coordinator_;
  const action::SendTask& task_;
  const std::function<aggregator::TimePoint()>& now_;
  aggregator::RoundTraffic& traffic_;
  std::map<ConnectionId, std::unique_ptr<Player>> players_;
  std::optional<action::RoundClosed> closed_;
  Actions next_;
};

}  // namespace

action::RoundClosed play_secure_round(aggregator::RoundCoordinator& coordinator, const action::SendTask& task,
                                      std::vector<SecureClient> clients, std::uint64_t seed,
                                      const std::function<aggregator::TimePoint()>& now, aggregator::RoundTraffic& traffic) {
  if (!task.secagg) throw Error("internal: play_secure_round called for a plain round");
  return SecureRoundPlay(coordinator, task, now, traffic).play(std::move(clients), seed);
}

}  // namespace sotto::sim
