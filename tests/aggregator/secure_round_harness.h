// The coordinator running secure rounds without a network (secure_round_test.cc, dp_histogram_test.cc): real
// SecAgg+ client sessions in memory driven through one round each, with dropouts at any step.
#pragma once

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "aggregator/fedavg.h"
#include "aggregator/round_coordinator.h"
#include "common/crypto/random_stream.h"
#include "common/dp/adaptive_clipping.h"
#include "common/dp/ddg_encoding.h"
#include "common/ml/accuracy_histogram.h"
#include "common/secagg/client_session.h"
#include "common/secagg/update_vector.h"
#include "tests/support/coordinator_actions.h"

namespace sotto::aggregator::test_secure_round {

using namespace std::chrono_literals;

inline model::ModelParameters model_of(std::vector<float> w, std::int64_t counter) {
  model::Tensor f{"w", model::DType::kFloat32, {static_cast<std::int64_t>(w.size())},
                  std::vector<std::byte>(w.size() * 4)};
  std::memcpy(f.data.data(), w.data(), f.data.size());
  model::Tensor c{"steps", model::DType::kInt64, {}, std::vector<std::byte>(8)};
  std::memcpy(c.data.data(), &counter, 8);
  return model::ModelParameters({f, c});
}

inline std::vector<float> weights(const model::ModelParameters& p) {
  auto s = p.find("w")->as<float>();
  return {s.begin(), s.end()};
}

template <typename A>
std::vector<A> all(const Actions& actions) {
  return test::all_of<A>(actions);
}

// Drives n clients through one secure round; `vanish_after[c]` = the step after which client c disappears
// (-1: before advertising; 3: never).
struct SecureRound {
  CoordinatorOptions options;
  std::unique_ptr<RoundCoordinator> coordinator;
  TimePoint now = TimePoint{} + 100s;
  std::map<ConnectionId, std::unique_ptr<secagg::ClientSession>> sessions;
  std::map<ConnectionId, std::vector<float>> deltas;
  std::optional<action::RoundClosed> closed;
  std::set<ConnectionId> gone;
  Actions masked_step_close;  // what the last masked input led to (the unmask requests, a debit before them)
  crypto::RandomStream noise_stream;
  std::map<ConnectionId, std::vector<std::uint32_t>> histogram_words;  // each client's, as it added them

  // With `privacy`, the round runs distributed DP (clip norm 1, so that the deltas are clipped).
  // `rounds`: rounds.total; `start_clip_norm`: the checkpointed clip norm a restart resumes with (0: none).
  SecureRound(std::uint32_t n, std::uint32_t min, std::optional<PrivacyOptions> privacy = std::nullopt,
              std::uint64_t rounds = 5, double start_clip_norm = 0) {
    options.total_rounds = rounds;
    options.cohort_target = n;
    options.cohort_min = min;
    options.secure.enabled = true;
    options.clip_norm = privacy ? 1.0 : 10.0;
    if (privacy) options.privacy = *privacy;
    options.secure.bits = privacy ? 16 : 32;
    options.secure.complete_graph = true;
    CoordinatorStart start{model_of({1, 2, 3, 4}, 7), 1, 0, {}};
    start.clip_norm = start_clip_norm;
    coordinator = std::make_unique<RoundCoordinator>(options, std::move(start), std::make_unique<FedAvg>());
    coordinator->start(now);
  }

  void absorb(const Actions& actions) {
    for (auto& c : all<action::RoundClosed>(actions)) closed = c;
  }

  void vanish(ConnectionId conn) {
    gone.insert(conn);
    absorb(coordinator->on_disconnect(conn, "vanished", now));
  }

  // Client i (0-based) of this round: its made-up trained delta; `max_clip_norm`: what its hello announces.
  std::function<std::vector<float>(ConnectionId)> make_delta = [](ConnectionId i) {
    const float c = static_cast<float>(i + 1);
    return std::vector<float>{0.5f * c, -0.25f * c, 0.1f, 1.0f};
  };
  double max_clip_norm = 0;
  bool accuracy_histograms = true;  // what the hellos say (the first client's; the others' are true)
  bool noised_histograms = true;
  ConnectionId next_conn = 1;
  std::optional<action::SendTask> last_task;

  // One round; its clients' connections are numbered on from the last round's.
  void run(const std::vector<int>& vanish_after) {
    const ConnectionId first = next_conn;
    const auto last = first + static_cast<ConnectionId>(vanish_after.size()) - 1;
    next_conn = last + 1;
    auto after = [&](ConnectionId c) { return vanish_after[c - first]; };
    closed.reset();
    Actions task_actions;
    for (ConnectionId c = first; c <= last; ++c) {
      task_actions = coordinator->on_hello(c, "c" + std::to_string(c - first + 1), now, max_clip_norm,
                                           accuracy_histograms || c != first, noised_histograms || c != first);
    }
    auto tasks = all<action::SendTask>(task_actions);
    REQUIRE(tasks.size() == 1);
    REQUIRE(tasks[0].secagg);
    last_task = tasks[0];
    const auto& sa = *tasks[0].secagg;
    const secagg::Quantizer quantizer({sa.clip_norm, sa.config.n});
    // Train (here: a made-up delta per client), quantize, start the session, advertise.
    Actions out;
    for (ConnectionId c = first; c <= last; ++c) {
      std::vector<float> delta = make_delta(c - first);
      deltas[c - first + 1] = delta;
      if (after(c) < 0) {
        vanish(c);
        continue;
      }
      if (sa.noise && sa.noise->clipped_count_weight > 0) {
        double norm = 0;
        for (float v : delta) norm += static_cast<double>(v) * v;
        delta = dp::with_clipped_count(delta, std::sqrt(norm), sa.clip_norm, sa.noise->clipped_count_weight);
      }
      auto input = sa.noise ? dp::ddg_encode(delta, sa.noise->ddg, sa.noise->rotation_seed, noise_stream,
                                             sa.noise->source != round::NoiseSource::kAggregator)
                            : quantizer.encode(delta);
      if (sa.evaluation_bins > 0) {  // client i's accuracies: global 0.1·i, personal 0.9
        const ml::LocalEvaluation measured{10, 0.1 * static_cast<double>(c - first), 0.9};
        auto h = ml::accuracy_histogram_words(measured, sa.evaluation_bins);
        if (sa.noise) dp::add_discrete_gaussian_mod(h, sa.noise->histogram_local_stddev, sa.config.bits, noise_stream);
        histogram_words[c] = h;
        input.insert(input.end(), h.begin(), h.end());
      }
      sessions[c] = std::make_unique<secagg::ClientSession>(sa.config, sa.index.at(c), std::move(input));
      out = coordinator->on_secagg_advertise(c, sessions[c]->start(), now);
      absorb(out);
    }
    auto dirs = all<action::SendKeyDirectory>(out);
    if (closed) return;
    for (const auto& dir : dirs) {
      const ConnectionId c = dir.conn;
      if (after(c) < 1) {
        vanish(c);
        continue;
      }
      out = coordinator->on_secagg_shares(c, sessions[c]->on_key_directory(dir.directory).shares, now);
      absorb(out);
    }
    if (closed) return;
    auto shares = all<action::SendShares>(out);
    for (const auto& s : shares) {
      if (after(s.conn) < 2) {
        vanish(s.conn);
        continue;
      }
      const auto masked = sessions[s.conn]->on_shares(secagg::SharesForYou{s.shares});
      MaskedUpload u;
      u.round_id = tasks[0].round_id;
      u.num_examples = 10;
      u.input = masked.input;
      out = coordinator->on_masked_input(s.conn, std::move(u), now);
      masked_step_close = out;
      absorb(out);
    }
    if (closed) return;
    for (const auto& r : all<action::SendUnmaskRequest>(out)) {
      if (after(r.conn) < 3) {
        vanish(r.conn);
        continue;
      }
      absorb(coordinator->on_secagg_unmask(r.conn, sessions[r.conn]->on_unmask_request(r.request), now));
    }
  }
};


inline PrivacyOptions distributed(double noise, std::uint32_t min_survivors,
                                  PrivacyMode mode = PrivacyMode::kDistributed) {
  PrivacyOptions p;
  p.mode = mode;
  p.noise_multiplier = noise;
  p.min_survivors = min_survivors;
  return p;
}


}  // namespace sotto::aggregator::test_secure_round
