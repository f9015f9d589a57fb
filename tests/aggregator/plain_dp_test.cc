// Differential privacy on plain rounds (no secure aggregation), without a network: the coordinator and real
// round::Participant state machines. Central: devices send clipped updates, the aggregator rounds them onto the
// integer grid and adds the whole discrete Gaussian noise once. Local: every device adds the whole noise to its own
// update and sends it decoded, telling nothing else. Either way the new model is the global plus the clipped mean
// (fixed denominator) plus noise of the configured variance, and the round is debited before it is released.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "aggregator/fedavg.h"
#include "aggregator/round_coordinator.h"
#include "common/round/participant.h"
#include "tests/support/coordinator_actions.h"

using namespace sotto;
using namespace sotto::aggregator;
using namespace std::chrono_literals;

namespace {

constexpr ConnectionId kClients = 5;

model::ModelParameters weights(std::vector<float> w) {
  model::Tensor t{"w", model::DType::kFloat32, {static_cast<std::int64_t>(w.size())},
                  std::vector<std::byte>(w.size() * 4)};
  std::memcpy(t.data.data(), w.data(), t.data.size());
  return model::ModelParameters({t});
}

std::vector<float> values(const model::ModelParameters& p) {
  auto s = p.find("w")->as<float>();
  return {s.begin(), s.end()};
}

std::vector<float> delta_of(ConnectionId c) { return {0.5f * c, -0.25f * c, 0.1f, 1.0f}; }

CoordinatorOptions plain_dp_options(PrivacyMode mode) {
  CoordinatorOptions o;
  o.total_rounds = 1;
  o.cohort_target = kClients;
  o.cohort_min = 3;
  o.clip_norm = 1;
  o.privacy.mode = mode;
  o.privacy.noise_multiplier = 0.5;
  return o;
}

struct PlainDpRound {
  RoundCoordinator coordinator;
  std::map<ConnectionId, round::SystemRandom> randoms;
  std::map<ConnectionId, round::Participant> devices;
  std::map<ConnectionId, round::out::Upload> uploads;
  Actions closing;  // the batch the last update led to
  TimePoint now = TimePoint{} + 100s;

  explicit PlainDpRound(PrivacyMode mode) : PlainDpRound(plain_dp_options(mode)) {}
  explicit PlainDpRound(CoordinatorOptions options)
      : coordinator(std::move(options), CoordinatorStart{weights({1, 2, 3, 4}), 1, 0, {}}, std::make_unique<FedAvg>()) {
    coordinator.start(now);
  }

  void run() {
    Actions out;
    for (ConnectionId c = 1; c <= kClients; ++c) {
      devices.emplace(c, round::Participant({"c" + std::to_string(c)}, randoms[c]));
      out = coordinator.on_hello(c, "c" + std::to_string(c), now);
    }
    const auto tasks = test::all_of<action::SendTask>(out);
    REQUIRE(tasks.size() == 1);
    REQUIRE(tasks[0].plain_noise);
    REQUIRE_FALSE(tasks[0].secagg);
    for (auto& [c, device] : devices) {
      round::Task task;
      task.round_id = tasks[0].round_id;
      task.plan = tasks[0].plan;
      task.global_model = tasks[0].model;
      task.plain_noise = tasks[0].plain_noise;
      REQUIRE(std::holds_alternative<round::out::Fit>(device.on_task(task, now).at(0)));
      round::Fitted fitted;
      fitted.delta = weights(delta_of(c));
      fitted.metrics.num_examples = 10 * c;
      fitted.metrics.mean_loss = 0.5;
      const auto said = device.on_fitted(std::move(fitted), now);
      const auto& upload = std::get<round::out::Upload>(said.at(0));
      uploads.emplace(c, upload);
      ClientUpdate u;
      u.round_id = upload.round_id;
      u.num_examples = upload.metrics.num_examples;
      u.train_loss = upload.metrics.mean_loss;
      u.delta = std::get<model::ModelParameters>(upload.payload);
      closing = coordinator.on_update(c, std::move(u), now);
    }
  }
};

}  // namespace

TEST_CASE("plain-round DP: the new model is the clipped mean plus noise of the configured variance, debited first",
          "[coordinator][dp]") {
  const PrivacyMode mode = GENERATE(PrivacyMode::kCentral, PrivacyMode::kLocal);
  constexpr int kRounds = 100;
  double sum = 0, squares = 0, expected_variance = 0;
  for (int r = 0; r < kRounds; ++r) {
    PlainDpRound round(mode);
    round.run();
    const auto closed = test::all_of<action::RoundClosed>(round.closing);
    REQUIRE(closed.size() == 1);
    const auto& report = closed[0].report;
    INFO(report.abandon_reason);
    REQUIRE(report.completed);
    REQUIRE(report.privacy);
    CHECK(report.privacy->charged);
    CHECK(report.privacy->honest == 1);
    // The debit comes before the round is closed (and its model released) in the same batch.
    const auto& batch = round.closing;
    const auto debit = std::find_if(batch.begin(), batch.end(),
                                    [](const Action& a) { return std::holds_alternative<action::DebitPrivacy>(a); });
    const auto closing = std::find_if(batch.begin(), batch.end(),
                                      [](const Action& a) { return std::holds_alternative<action::RoundClosed>(a); });
    REQUIRE(debit < closing);
    const auto& charge = std::get<action::DebitPrivacy>(*debit).charge;
    const double per_share = charge.ddg.local_stddev / charge.ddg.scale;
    expected_variance = (mode == PrivacyMode::kCentral ? 1 : 5) * per_share * per_share / 25;
    for (ConnectionId c = 1; c <= kClients; ++c) {
      const auto& upload = round.uploads.at(c);
      const auto sent = values(std::get<model::ModelParameters>(upload.payload));
      double norm = 0;
      for (float v : delta_of(c)) norm += static_cast<double>(v) * v;
      if (mode == PrivacyMode::kCentral) {  // clipped, nothing else done to it
        for (int i = 0; i < 4; ++i) CHECK(sent[i] == Approx(delta_of(c)[i] / std::max(1.0, std::sqrt(norm))));
        CHECK(upload.metrics.num_examples == 10u * c);
      } else {  // noised, and nothing else told
        CHECK(upload.metrics.num_examples == 1);
        CHECK(upload.metrics.mean_loss == 0);
      }
    }
    const auto w = values(*closed[0].global_model);
    for (int i = 0; i < 4; ++i) {
      double mean = 0;  // the clipped deltas' mean over the fixed denominator 5, whatever the example counts
      for (ConnectionId c = 1; c <= kClients; ++c) {
        double norm = 0;
        for (float v : delta_of(c)) norm += static_cast<double>(v) * v;
        mean += delta_of(c)[i] / std::max(1.0, std::sqrt(norm)) / kClients;
      }
      const double e = w[i] - ((i + 1) + mean);
      sum += e;
      squares += e * e;
    }
  }
  const double n = 4.0 * kRounds;
  CHECK(std::abs(sum / n) < 5 * std::sqrt(expected_variance / n));
  CHECK(squares / n == Approx(expected_variance).epsilon(6 * std::sqrt(2 / n)));
}

TEST_CASE("plain-round DP: adaptive clipping under central noise reads each update's clipped bit from its norm",
          "[coordinator][dp][adaptive]") {
  // Every delta_of(c) has a norm above 1 and below 10: at clip norm 1 all five are clipped and the clip norm grows,
  // at 10 none is and it shrinks, each by about exp(eta / 2) (the bits' noise, 0.5 over 5 clients, moves it little).
  for (const double clip : {1.0, 10.0}) {
    INFO("clip norm " << clip);
    CoordinatorOptions options = plain_dp_options(PrivacyMode::kCentral);
    options.clip_norm = clip;
    options.privacy.adaptive_clipping.enabled = true;
    options.privacy.adaptive_clipping.count_stddev = 0.5;
    PlainDpRound round(options);
    round.run();
    for (const auto& [c, upload] : round.uploads) {  // the device clipped to the update's own norm, not the joint one
      double norm = 0;
      for (float v : values(std::get<model::ModelParameters>(upload.payload))) norm += static_cast<double>(v) * v;
      CHECK(std::sqrt(norm) <= clip * (1 + 1e-6));
    }
    const auto closed = test::all_of<action::RoundClosed>(round.closing);
    REQUIRE(closed.size() == 1);
    const auto& report = closed[0].report;
    REQUIRE(report.completed);
    REQUIRE(report.privacy);
    CHECK(report.privacy->count_weight > 0);
    REQUIRE(report.privacy->unclipped_fraction);
    const double fraction = *report.privacy->unclipped_fraction;
    CHECK(std::abs(fraction - (clip == 1.0 ? 0.0 : 1.0)) < 0.5);
    const double expected = clip * std::exp(-0.2 * (fraction - 0.5));
    CHECK(report.privacy->next_clip_norm == Approx(expected));
    CHECK((clip == 1.0 ? report.privacy->next_clip_norm > clip : report.privacy->next_clip_norm < clip));
    const auto w = values(*closed[0].global_model);  // the count coordinate stayed out of the model
    REQUIRE(w.size() == 4);
  }
}

TEST_CASE("plain-round DP: distributed noise needs secure aggregation and every mode a clip norm", "[coordinator][dp]") {
  auto make = [](CoordinatorOptions o) {
    return RoundCoordinator(o, CoordinatorStart{weights({1, 2, 3, 4}), 1, 0, {}}, std::make_unique<FedAvg>());
  };
  CHECK_THROWS_WITH(make(plain_dp_options(PrivacyMode::kDistributed)), Catch::Contains("needs secure aggregation"));
  auto unclipped = plain_dp_options(PrivacyMode::kCentral);
  unclipped.clip_norm = 0;
  CHECK_THROWS_WITH(make(unclipped), Catch::Contains("privacy.clip_norm"));
}

TEST_CASE("a device refuses a plain round whose noise plan is distributed", "[round][dp]") {
  round::DevicePrivacy floor;
  round::DistributedNoise noise;
  noise.source = round::NoiseSource::kShares;
  noise.ddg.l2_bound = 1;
  noise.ddg.local_stddev = 1;
  noise.ddg.padded = noise.ddg.dimension = 4;
  const auto judged = round::judge_plan(floor, round::PlanPrivacy{&noise, std::nullopt, 1.0, {}}, {});
  REQUIRE(std::holds_alternative<std::string>(judged));
  CHECK_THAT(std::get<std::string>(judged), Catch::Contains("outside a secure sum"));
}
