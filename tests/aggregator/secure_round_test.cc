// The coordinator running secure rounds without a network: real SecAgg+ client sessions in memory, dropouts at
// every step, and the new global model checked against the plain mean of the survivors' clipped updates.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <functional>
#include <set>

#include "aggregator/fedavg.h"
#include "aggregator/round_coordinator.h"
#include "aggregator/round_log.h"
#include "common/crypto/random_stream.h"
#include "common/dp/adaptive_clipping.h"
#include "common/dp/ddg_encoding.h"
#include "common/ml/accuracy_histogram.h"
#include "common/secagg/client_session.h"
#include "common/secagg/update_vector.h"
#include "tests/aggregator/secure_round_harness.h"
#include "tests/support/coordinator_actions.h"

using namespace sotto;
using namespace sotto::aggregator;
using namespace std::chrono_literals;
using namespace sotto::aggregator::test_secure_round;


TEST_CASE("secure round: the new model is the global plus the mean of the survivors' updates", "[secagg][coordinator]") {
  // Client 5 vanishes after sending its masked input: its input is in the sum, so it counts as a survivor.
  // Client 4 vanishes after sharing keys: its masks are removed through its reconstructed mask key.
  SecureRound round(6, 3);
  round.run({3, 3, 3, 1, 2, 3});
  REQUIRE(round.closed);
  const auto& report = round.closed->report;
  CHECK(report.completed);
  REQUIRE(report.secagg);
  CHECK(report.secagg->n == 6);
  CHECK(report.secagg->completed[secagg::Step::kAdvertiseKeys] == 6);
  CHECK(report.secagg->completed[secagg::Step::kShareKeys] == 6);
  CHECK(report.secagg->completed[secagg::Step::kMaskedInput] == 5);
  CHECK(report.survivors == 5);
  std::vector<double> mean(4, 0);
  for (ConnectionId c : {1, 2, 3, 5, 6}) {
    for (int i = 0; i < 4; ++i) mean[i] += round.deltas[c][i] / 5.0;
  }
  const auto w = weights(*round.closed->global_model);
  const std::vector<double> start = {1, 2, 3, 4};
  for (int i = 0; i < 4; ++i) CHECK(w[i] == Approx(start[i] + mean[i]).margin(1e-5));
  std::int64_t steps = 0;
  std::memcpy(&steps, round.closed->global_model->find("steps")->data.data(), 8);
  CHECK(steps == 7);  // integer buffers keep the global value under secure aggregation
}

TEST_CASE("secure round: the survivors' accuracy histograms come off the sum, and the model is as without them",
          "[secagg][coordinator][histogram]") {
  SecureRound round(5, 3);
  round.options.evaluation_bins = 10;
  round.coordinator = std::make_unique<RoundCoordinator>(
      round.options, CoordinatorStart{model_of({1, 2, 3, 4}, 7), 1, 0, {}}, std::make_unique<FedAvg>());
  round.coordinator->start(round.now);
  round.run({3, 3, 1, 3, 3});  // the third vanishes after sharing keys: its words are not in the sum
  REQUIRE(round.closed);
  REQUIRE(round.last_task->secagg->evaluation_bins == 10);
  CHECK(round.last_task->secagg->config.vector_length == 4 + 20);
  const auto& report = round.closed->report;
  REQUIRE(report.local_histogram);
  CHECK(report.local_histogram->global == std::vector<std::uint64_t>{1, 1, 0, 1, 1, 0, 0, 0, 0, 0});
  CHECK(report.local_histogram->personal == std::vector<std::uint64_t>{0, 0, 0, 0, 0, 0, 0, 0, 0, 4});
  const auto logged = round_record(report, 1, {}, std::nullopt, 0).at("local_evaluation");
  CHECK(logged.at("source") == "secure_sum");
  CHECK(logged.at("clients") == 4);
  CHECK(logged.at("personal").at("median").get<double>() == Approx(0.95));
  std::vector<double> mean(4, 0);
  for (ConnectionId c : {1, 2, 4, 5}) {
    for (int i = 0; i < 4; ++i) mean[i] += round.deltas[c][i] / 4.0;
  }
  const auto w = weights(*round.closed->global_model);
  for (int i = 0; i < 4; ++i) CHECK(w[i] == Approx(i + 1 + mean[i]).margin(1e-5));

  // A device whose hello does not name the capability (an older client) in the next cohort: no histograms asked.
  round.coordinator->on_round_recorded(round.now);
  round.accuracy_histograms = false;
  round.run({3, 3, 3, 3, 3});
  REQUIRE(round.closed);
  CHECK(round.last_task->secagg->evaluation_bins == 0);
  CHECK(round.last_task->secagg->config.vector_length == 4);
  CHECK_FALSE(round.closed->report.local_histogram);
  CHECK_THAT(round.closed->report.local_histogram_problem, Catch::Contains("1 of the cohort's 5 devices"));
}

TEST_CASE("secure round: dropouts at every step are survived above the threshold", "[secagg][coordinator]") {
  // One client vanishes at each step: before advertising, after advertising, after sharing, after masking.
  // Complete graph with n = 10: t = 5, and each survivor's self-mask seed needs t shares from the others.
  SecureRound round(10, 3);
  round.run({-1, 0, 1, 2, 3, 3, 3, 3, 3, 3});
  REQUIRE(round.closed);
  INFO(round.closed->report.abandon_reason);
  CHECK(round.closed->report.completed);
  CHECK(round.closed->report.survivors == 7);  // clients 4 (input sent) to 10
  CHECK(round.closed->report.dropped.size() == 4);
}

TEST_CASE("secure round: too many dropouts abandon the round and leave the model unchanged", "[secagg][coordinator]") {
  SecureRound round(5, 4);
  round.run({3, 3, 1, 1, 3});
  REQUIRE(round.closed);
  CHECK_FALSE(round.closed->report.completed);
  CHECK(weights(*round.closed->global_model) == std::vector<float>{1, 2, 3, 4});
}

TEST_CASE("secure round: a message for the wrong step is rejected and its sender dropped", "[secagg][coordinator]") {
  SecureRound round(3, 3);
  for (ConnectionId c = 1; c <= 3; ++c) round.coordinator->on_hello(c, "c" + std::to_string(c), round.now);
  auto out = round.coordinator->on_secagg_shares(1, {}, round.now);
  auto rejects = all<action::Reject>(out);
  REQUIRE(rejects.size() == 1);
  CHECK(rejects[0].code == v1::ERROR_CODE_UNEXPECTED_MESSAGE);
  auto closed = all<action::RoundClosed>(out);  // 2 left, below cohort_min 3
  REQUIRE(closed.size() == 1);
  CHECK_FALSE(closed[0].report.completed);
}

TEST_CASE("secure round: fewer than three clients cannot run secure aggregation", "[secagg][coordinator]") {
  SecureRound round(2, 2);
  round.coordinator->on_hello(1, "c1", round.now);
  auto out = round.coordinator->on_hello(2, "c2", round.now);
  CHECK(all<action::SendTask>(out).empty());
  auto closed = all<action::RoundClosed>(out);
  REQUIRE(closed.size() == 1);
  CHECK_THAT(closed[0].report.abandon_reason, Catch::Contains("at least 3 clients"));
}

TEST_CASE("a member that breaks the protocol mid-round is dropped from its secure seat too, so the step does not "
          "wait for it",
          "[aggregator][secagg]") {
  SecureRound r(4, 3);
  Actions task_actions;
  for (ConnectionId c = 1; c <= 4; ++c) task_actions = r.coordinator->on_hello(c, "c" + std::to_string(c), r.now);
  const auto tasks = all<action::SendTask>(task_actions);
  REQUIRE(tasks.size() == 1);
  const auto& sa = *tasks[0].secagg;
  // Client 4 says hello again on its connection: rejected, and dropped from the round with the reason.
  const auto again = r.coordinator->on_hello(4, "c4", r.now);
  REQUIRE(all<action::Reject>(again).size() == 1);
  Actions last;
  for (ConnectionId c = 1; c <= 3; ++c) {
    secagg::ClientSession session(sa.config, sa.index.at(c), std::vector<std::uint32_t>(sa.config.vector_length));
    last = r.coordinator->on_secagg_advertise(c, session.start(), r.now);
  }
  // The third advertisement closes the step at once: nobody is waited for until the deadline.
  const auto directory = all<action::SendKeyDirectory>(last);
  std::vector<ConnectionId> to;
  for (const auto& d : directory) to.push_back(d.conn);
  CHECK(to == std::vector<ConnectionId>{1, 2, 3});
}


TEST_CASE("DP round: the debit precedes the unmask requests and the mean is the clipped mean plus noise",
          "[secagg][coordinator][dp]") {
  // Five clients, all surviving (more than min_survivors = 3): every decoded model is the global plus the mean of
  // the five clipped deltas (fixed denominator 5) plus the noise of five shares; over many rounds its mean is the
  // true mean and its variance the configured one. Central: no client noise, one draw of all of it by the
  // aggregator. Local: every client adds all of it to its own update, so the sum carries five times the noise.
  constexpr int kRounds = 100;
  const PrivacyMode mode = GENERATE(PrivacyMode::kDistributed, PrivacyMode::kCentral, PrivacyMode::kLocal);
  const bool central = mode == PrivacyMode::kCentral;
  std::vector<double> error_sum(4, 0), error_squares(4, 0);
  double expected_variance = 0;
  for (int r = 0; r < kRounds; ++r) {
    SecureRound round(5, 3, distributed(0.5, 3, mode));
    round.run({3, 3, 3, 3, 3});
    REQUIRE(round.closed);
    INFO(round.closed->report.abandon_reason);
    REQUIRE(round.closed->report.completed);
    // The debit is in the batch that closed the masked-input step, before every unmask request.
    const auto& batch = round.masked_step_close;
    const auto debit = std::find_if(batch.begin(), batch.end(),
                                    [](const Action& a) { return std::holds_alternative<action::DebitPrivacy>(a); });
    const auto first_request = std::find_if(batch.begin(), batch.end(), [](const Action& a) {
      return std::holds_alternative<action::SendUnmaskRequest>(a);
    });
    REQUIRE(debit != batch.end());
    REQUIRE(debit < first_request);
    const auto& charge = std::get<action::DebitPrivacy>(*debit).charge;
    const auto& privacy = *round.closed->report.privacy;
    CHECK(privacy.charged);
    // 3 less ceil(0.05 · 5); the aggregator's one draw; each client's own update.
    CHECK(privacy.honest == (mode == PrivacyMode::kDistributed ? 2u : 1u));
    CHECK(privacy.mode == privacy_mode_name(mode));
    CHECK(privacy.epsilon_spent == Approx(charge.epsilon.epsilon));
    const double per_share = charge.ddg.local_stddev / charge.ddg.scale;
    // Five shares (distributed or local), or one central draw, divided by the fixed denominator 5.
    expected_variance = (central ? 1 : 5) * per_share * per_share / 25;
    const auto w = weights(*round.closed->global_model);
    for (int i = 0; i < 4; ++i) {
      double mean = 0;
      for (ConnectionId c = 1; c <= 5; ++c) {
        double norm = 0;
        for (float v : round.deltas[c]) norm += static_cast<double>(v) * v;
        mean += round.deltas[c][i] / std::max(1.0, std::sqrt(norm)) / 5;
      }
      const double e = w[i] - ((i + 1) + mean);
      error_sum[i] += e;
      error_squares[i] += e * e;
    }
  }
  // The noise is random (OpenSSL draws it), so the bounds are statistical: pooled over the four coordinates (the
  // rotation keeps the noise independent across them) the n = 4 · kRounds errors have a mean within 5 standard
  // errors of 0 and a mean square within 6 of its chi-square spread sqrt(2 / n) of the variance; a false alarm
  // is then rarer than one run in 10^5.
  const double n = 4.0 * kRounds;
  double sum = 0, squares = 0;
  for (int i = 0; i < 4; ++i) {
    sum += error_sum[i];
    squares += error_squares[i];
  }
  CHECK(std::abs(sum / n) < 5 * std::sqrt(expected_variance / n));
  CHECK(squares / n == Approx(expected_variance).epsilon(6 * std::sqrt(2 / n)));
}

TEST_CASE("distributed DP round: fewer masked inputs than min_survivors are not unmasked and nothing is charged",
          "[secagg][coordinator][dp]") {
  SecureRound round(5, 3, distributed(0.5, 5));
  round.run({3, 3, 3, 1, 3});  // client 4 leaves after sharing keys: 4 masked inputs, 5 needed
  REQUIRE(round.closed);
  const auto& report = round.closed->report;
  CHECK_FALSE(report.completed);
  CHECK_THAT(report.abandon_reason, Catch::Contains("min_survivors"));
  REQUIRE(report.privacy);
  CHECK_FALSE(report.privacy->charged);
  CHECK(report.privacy->epsilon_spent == 0);
  CHECK(all<action::DebitPrivacy>(round.masked_step_close).empty());
  CHECK(all<action::SendUnmaskRequest>(round.masked_step_close).empty());
  CHECK(weights(*round.closed->global_model) == std::vector<float>{1, 2, 3, 4});
}

namespace {

PrivacyOptions adaptive(double learning_rate, PrivacyMode mode = PrivacyMode::kDistributed) {
  PrivacyOptions p = distributed(0.1, 8, mode);
  p.adaptive_clipping = {true, 0.5, learning_rate, 0};
  return p;
}

// Ten clients whose update norms are 1, 2, ..., 10.
std::vector<float> norm_of_rank(ConnectionId i) { return {static_cast<float>(i + 1), 0, 0, 0}; }

}  // namespace

TEST_CASE("adaptive clipping: the clip norm follows the median of the update norms", "[secagg][coordinator][dp]") {
  // From a clip norm of 1 it grows while most updates are clipped and settles where half are within it (between 5
  // and 6); each round's record carries the noised fraction, and the next clip norm is checkpointed. The same
  // whether the clients add the noise (distributed) or the aggregator does (central).
  constexpr int kRounds = 40;
  const PrivacyMode mode = GENERATE(PrivacyMode::kDistributed, PrivacyMode::kCentral);
  SecureRound round(10, 10, adaptive(0.5, mode), kRounds);
  round.make_delta = norm_of_rank;
  std::vector<double> clips;
  for (int r = 0; r < kRounds; ++r) {
    round.run(std::vector<int>(10, 3));
    REQUIRE(round.closed);
    INFO(round.closed->report.abandon_reason);
    REQUIRE(round.closed->report.completed);
    const auto& p = *round.closed->report.privacy;
    REQUIRE(p.unclipped_fraction);
    CHECK(p.count_weight > 0);
    CHECK(p.clip_norm == round.last_task->plan.clip_norm);
    CHECK(p.clip_norm == round.last_task->secagg->clip_norm);
    CHECK(p.mechanism_clip_norm == Approx(dp::joint_clip_norm(p.clip_norm, p.count_weight)));
    CHECK(p.dimension == 5);  // the four floating-point parameters and the count
    CHECK(round.closed->clip_norm == p.next_clip_norm);
    clips.push_back(p.clip_norm);
    round.coordinator->on_round_recorded(round.now);
  }
  CHECK(clips[0] == 1);
  CHECK(clips[5] > clips[0] * 1.5);
  for (int r = kRounds - 10; r < kRounds; ++r) {
    CHECK(clips[r] > 3.5);
    CHECK(clips[r] < 8.5);
  }
}

TEST_CASE("adaptive clipping: the clip norm never rises above the smallest max_clip_norm the cohort announced",
          "[secagg][coordinator][dp]") {
  SecureRound round(10, 10, adaptive(0.5), 12);
  round.make_delta = norm_of_rank;
  round.max_clip_norm = 2;
  for (int r = 0; r < 12; ++r) {
    round.run(std::vector<int>(10, 3));
    REQUIRE(round.closed);
    REQUIRE(round.closed->report.completed);
    CHECK(round.last_task->plan.clip_norm <= 2);
    CHECK(round.closed->clip_norm <= 2);
    round.coordinator->on_round_recorded(round.now);
  }
  CHECK(round.last_task->plan.clip_norm == 2);  // it got there, and stopped
}

TEST_CASE("adaptive clipping: a restart resumes from the checkpointed clip norm", "[secagg][coordinator][dp]") {
  SecureRound round(10, 10, adaptive(0.2), 5, 3.7);
  round.make_delta = norm_of_rank;
  round.run(std::vector<int>(10, 3));
  REQUIRE(round.closed);
  CHECK(round.last_task->plan.clip_norm == 3.7);
  CHECK(round.last_task->secagg->clip_norm == 3.7);
}

TEST_CASE("adaptive clipping needs a noised secure training round", "[secagg][coordinator][dp]") {
  CoordinatorOptions options;
  options.secure.enabled = true;
  options.clip_norm = 1;
  options.privacy.adaptive_clipping.enabled = true;  // but privacy.mode is off
  CHECK_THROWS_WITH(RoundCoordinator(options, CoordinatorStart{model_of({1, 2}, 0), 1, 0, {}}, std::make_unique<FedAvg>()),
                    Catch::Contains("adaptive_clipping needs"));
}

TEST_CASE("DP secure round: a cohort smaller than min_survivors is abandoned before any task goes out",
          "[secagg][coordinator][dp]") {
  // Four check in and the check-in window closes; five noise shares are needed. Nobody is asked to train (the
  // devices would refuse such a plan anyway), and the draw is still reported, uncharged against the aggregator.
  SecureRound round(6, 3, distributed(0.5, 5));
  Actions out;
  for (ConnectionId c = 1; c <= 4; ++c) out = round.coordinator->on_hello(c, "c" + std::to_string(c), round.now);
  out = round.coordinator->on_tick(round.now + 31s);
  CHECK(all<action::SendTask>(out).empty());
  const auto closed = all<action::RoundClosed>(out);
  REQUIRE(closed.size() == 1);
  CHECK_FALSE(closed[0].report.completed);
  CHECK_THAT(closed[0].report.abandon_reason, Catch::Contains("fewer than privacy.min_survivors = 5"));
  REQUIRE(closed[0].report.privacy);
  CHECK_FALSE(closed[0].report.privacy->charged);
  CHECK(closed[0].report.privacy->epsilon_spent == 0);
}

TEST_CASE("secure round: the server's summing unmasking and decoding are timed by the coordinator's stopwatch",
          "[secagg][coordinator]") {
  SecureRound round(4, 3);
  TimePoint fake{};
  round.options.stopwatch = [&] { return fake += 10ms; };  // each timed call: two readings 10 ms apart
  round.coordinator = std::make_unique<RoundCoordinator>(round.options, CoordinatorStart{model_of({1, 2, 3, 4}, 7), 1, 0, {}},
                                                         std::make_unique<FedAvg>());
  round.coordinator->start(round.now);
  round.run({3, 3, 3, 3});
  REQUIRE(round.closed);
  REQUIRE(round.closed->report.secagg);
  const auto& s = *round.closed->report.secagg;
  CHECK(s.summing_seconds == Approx(0.05));    // four masked inputs and closing their step
  CHECK(s.unmasking_seconds == Approx(0.01));  // closing the unmask responses
  CHECK(s.decoding_seconds == Approx(0.01));
  const auto record = round_record(round.closed->report, 1, RoundTraffic{}, std::nullopt, 0);
  CHECK(record.at("seconds").at("secure_summing").get<double>() == Approx(0.05));
  CHECK(record.at("seconds").at("secure_unmasking").get<double>() == Approx(0.01));
}
