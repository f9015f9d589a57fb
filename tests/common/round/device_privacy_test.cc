// The device's judgement of a round's plan (round/device_privacy.h): its own view of the noise, its floors and its
// budget, without the network.
#include "common/round/device_privacy.h"

#include <catch2/catch.hpp>

#include <cmath>

#include "common/dp/ddg_accounting.h"
#include "common/dp/ddg_parameters.h"
#include "common/dp/integer_sum.h"
#include "common/dp/rdp_accountant.h"

using namespace sotto;
using namespace sotto::round;

namespace {

SecureAssignment noisy_assignment(double noise, std::uint32_t min_survivors, std::uint32_t server_honest) {
  SecureAssignment a;
  a.clip_norm = 1.0;
  a.config.bits = 16;
  a.config.n = 8;
  a.noise = DistributedNoise{dp::choose_ddg_parameters({16, 1.0, noise, 8, server_honest, 1000}), {}, min_survivors,
                             0};
  return a;
}

}  // namespace

TEST_CASE("a device accepts a plan that meets its floors and charges itself the round", "[round][dp]") {
  DevicePrivacy floor;
  floor.min_noise_multiplier = 0.9;
  const auto a = noisy_assignment(1.0, 6, 5);  // 6 - ceil(0.05 · 8) = 5 honest, as the aggregator assumed
  auto judged = judge_plan(floor, &a, {});
  REQUIRE(std::holds_alternative<std::optional<DeviceCharge>>(judged));
  const auto& charge = *std::get<std::optional<DeviceCharge>>(judged);
  CHECK(charge.honest == 5);
  CHECK(charge.noise_multiplier == Approx(1.0).epsilon(1e-3));
  CHECK(charge.epsilon > 0);
  // A second contribution costs more: the device composes what it has spent.
  auto again = judge_plan(floor, &a, charge.rdp);
  CHECK(std::get<std::optional<DeviceCharge>>(again)->epsilon > charge.epsilon);
}

TEST_CASE("a device refuses too little noise, a large clip, no noise, an unsafe n_min and its spent budget",
          "[round][dp]") {
  DevicePrivacy floor;
  auto refusal = [&](const SecureAssignment* a, const std::vector<double>& spent = {}) {
    auto judged = judge_plan(floor, a, spent);
    return std::holds_alternative<std::string>(judged) ? std::get<std::string>(judged) : std::string();
  };
  const auto a = noisy_assignment(1.0, 6, 5);
  floor.min_noise_multiplier = 1.5;
  CHECK_THAT(refusal(&a), Catch::Contains("below privacy.min_noise_multiplier"));
  // The aggregator counted 5 honest shares, but this device assumes a third of the 8 collude: its share implies
  // less.
  floor.min_noise_multiplier = 0.9;
  floor.assumed_corruption_rate = 0.34;
  CHECK_THAT(refusal(&a), Catch::Contains("with 3 honest survivors"));
  floor.assumed_corruption_rate = 0.99;
  CHECK_THAT(refusal(&a), Catch::Contains("no honest share"));
  auto oversold = a;
  oversold.noise->min_survivors = 9;  // more noise shares than the round has clients
  floor.assumed_corruption_rate = 0.05;
  CHECK_THAT(refusal(&oversold), Catch::Contains("cannot exist"));
  floor.assumed_corruption_rate = 0.05;
  floor.max_clip_norm = 0.5;
  CHECK_THAT(refusal(&a), Catch::Contains("above privacy.max_clip_norm"));
  floor.max_clip_norm = 0;
  floor.require_noise = true;
  SecureAssignment plain;
  CHECK_THAT(refusal(&plain), Catch::Contains("no distributed DP noise"));
  CHECK_THAT(refusal(nullptr), Catch::Contains("no distributed DP noise"));
  floor.require_noise = false;
  CHECK(refusal(nullptr).empty());
  const auto one = std::get<std::optional<DeviceCharge>>(judge_plan(floor, &a, {}));
  floor.max_epsilon = one->epsilon * 1.05;
  CHECK(refusal(&a).empty());
  CHECK_THAT(refusal(&a, one->rdp), Catch::Contains("over privacy.max_epsilon"));
}

TEST_CASE("in local mode a device counts only its own share and needs no honest neighbour", "[round][dp]") {
  DevicePrivacy floor;
  floor.min_noise_multiplier = 0.9;
  floor.assumed_corruption_rate = 0.99;  // every other client colludes: a distributed plan would leave no share
  auto a = noisy_assignment(1.0, 3, 1);  // each client's share is the whole noise (h = 1)
  a.noise->source = NoiseSource::kOwn;
  auto judged = judge_plan(floor, &a, {});
  REQUIRE(std::holds_alternative<std::optional<DeviceCharge>>(judged));
  const auto& charge = *std::get<std::optional<DeviceCharge>>(judged);
  CHECK(charge.mode == "local");
  CHECK(charge.honest == 1);
  CHECK(charge.noise_multiplier == Approx(1.0).epsilon(1e-3));
  // A share sized for five honest clients is too little for a client on its own.
  auto thin = noisy_assignment(1.0, 6, 5);
  thin.noise->source = NoiseSource::kOwn;
  auto refused = judge_plan(floor, &thin, {});
  REQUIRE(std::holds_alternative<std::string>(refused));
  CHECK_THAT(std::get<std::string>(refused), Catch::Contains("below privacy.min_noise_multiplier"));
}

TEST_CASE("a device takes part only in the privacy modes it accepts", "[round][dp]") {
  DevicePrivacy floor;
  floor.accepted_modes = {"local"};
  auto local = noisy_assignment(1.0, 3, 1);
  local.noise->source = NoiseSource::kOwn;
  CHECK(std::holds_alternative<std::optional<DeviceCharge>>(judge_plan(floor, &local, {})));
  for (const auto source : {NoiseSource::kShares, NoiseSource::kAggregator}) {
    auto other = noisy_assignment(1.0, 6, 5);
    other.noise->source = source;
    auto judged = judge_plan(floor, &other, {});
    REQUIRE(std::holds_alternative<std::string>(judged));
    CHECK_THAT(std::get<std::string>(judged), Catch::Contains("is not among privacy.accepted_modes"));
  }
  auto off = judge_plan(floor, nullptr, {});
  REQUIRE(std::holds_alternative<std::string>(off));
  CHECK_THAT(std::get<std::string>(off), Catch::Contains("\"off\" is not among"));
}

TEST_CASE("a device charges itself its accuracy histograms' noise beside the update's, and holds it to its floor",
          "[round][dp][histogram]") {
  DevicePrivacy floor;
  floor.min_noise_multiplier = 0.9;
  const auto plain = noisy_assignment(1.0, 6, 5);
  auto with_histograms = plain;
  with_histograms.evaluation_bins = 10;
  // The aggregator's share for z_h = 2 with 5 honest survivors: sigma = 2·sqrt(2)/sqrt(5).
  with_histograms.noise->histogram_local_stddev =
      dp::choose_integer_sum_parameters({dp::kOneHotPairBound, 20, 2.0, 8, 5, 16}).local_stddev;
  const auto update = *std::get<std::optional<DeviceCharge>>(judge_plan(floor, &plain, {}));
  const auto both = *std::get<std::optional<DeviceCharge>>(judge_plan(floor, &with_histograms, {}));
  CHECK(both.histogram_noise_multiplier == Approx(2.0).epsilon(1e-3));
  dp::DdgParameters h{16, 20, 20, std::sqrt(2.0), 2.0, 5, 1, std::sqrt(2.0), 2.0,
                      with_histograms.noise->histogram_local_stddev};
  const auto histogram_rdp = dp::ddg_rdp(h, 1.0, dp::default_orders());
  for (std::size_t i = 0; i < both.rdp.size(); ++i) CHECK(both.rdp[i] == Approx(update.rdp[i] + histogram_rdp[i]));
  CHECK(both.epsilon > update.epsilon);
  floor.min_noise_multiplier = 1.5;  // the update's z of 1 is below it already; then the histograms' alone
  CHECK_THAT(std::get<std::string>(judge_plan(floor, &with_histograms, {})), Catch::Contains("its noise share"));
  floor.min_noise_multiplier = 0.9;
  with_histograms.noise->histogram_local_stddev /= 4;
  CHECK_THAT(std::get<std::string>(judge_plan(floor, &with_histograms, {})),
             Catch::Contains("its accuracy histograms' noise share implies a noise multiplier of 0.5"));
}
