// The devices' accuracy histograms under distributed DP, without a network: each survivor adds its noise share to
// its histogram words, the aggregator releases the noised counts, and the round's charge is the update's and the
// histograms' RDPs added; the budget's noise fitting counts the histograms too.
#include <catch2/catch.hpp>

#include "aggregator/privacy_budget.h"
#include "aggregator/round_log.h"
#include "common/dp/ddg_accounting.h"
#include "common/dp/ddg_encoding.h"
#include "common/dp/integer_sum.h"
#include "tests/aggregator/secure_round_harness.h"

using namespace sotto;
using namespace sotto::aggregator;
using namespace sotto::aggregator::test_secure_round;

namespace {

PrivacyOptions with_histograms(double histogram_noise) {
  PrivacyOptions p = distributed(1.0, 3);
  p.histogram_noise_multiplier = histogram_noise;
  return p;
}

}  // namespace

TEST_CASE("DP round: the accuracy histograms carry a noise share of their own and are charged with the update",
          "[secagg][coordinator][dp][histogram]") {
  SecureRound round(5, 3, with_histograms(2.0));
  round.options.evaluation_bins = 10;
  round.coordinator = std::make_unique<RoundCoordinator>(
      round.options, CoordinatorStart{model_of({1, 2, 3, 4}, 7), 1, 0, {}}, std::make_unique<FedAvg>());
  round.coordinator->start(round.now);
  round.run({3, 3, 3, 3, 3});
  REQUIRE(round.closed);
  const auto& sa = *round.last_task->secagg;
  REQUIRE(sa.noise);
  CHECK(sa.evaluation_bins == 10);
  CHECK(sa.config.vector_length == sa.noise->ddg.padded + 20);
  CHECK(sa.noise->histogram_local_stddev > 0);
  const auto& report = round.closed->report;
  REQUIRE(report.local_histogram);
  // The released counts are the survivors' noised words summed mod 2^bits, read signed, clamped to [0, 5].
  std::vector<std::uint32_t> summed(20, 0);
  for (const auto& [conn, words] : round.histogram_words) {
    for (std::size_t b = 0; b < 20; ++b) summed[b] += words[b];
  }
  for (auto& w : summed) w &= (1u << sa.config.bits) - 1;
  const auto values = dp::signed_values(summed, sa.config.bits);
  for (std::size_t b = 0; b < 20; ++b) {
    const auto expected = static_cast<std::uint64_t>(std::clamp<std::int64_t>(values[b], 0, 5));
    CHECK((b < 10 ? report.local_histogram->global[b] : report.local_histogram->personal[b - 10]) == expected);
  }
  CHECK(report.local_histogram_noise_stddev ==
        Approx(dp::effective_local_stddev(sa.noise->histogram_local_stddev) * std::sqrt(5.0)));
  REQUIRE(report.privacy);
  CHECK(report.privacy->histogram_bins == 10);
  CHECK(report.privacy->histogram_noise_multiplier == 2.0);
  const auto logged = round_record(report, 1, {}, std::nullopt, 0);
  CHECK(logged.at("local_evaluation").at("noise_stddev").get<double>() > 0);
  CHECK(logged.at("privacy").at("accuracy_histogram").at("bins") == 10);

  // The charge: the update's mechanism and the histograms' (kOneHotPairBound over 20 words), RDPs added.
  PrivacyBudget alone(distributed(1.0, 3), 16, round.options.secure.corruption_rate, 1.0, {});
  PrivacyBudget both(with_histograms(2.0), 16, round.options.secure.corruption_rate, 1.0, {});
  const auto update = std::get<RoundCharge>(alone.plan(1, 5, 4));
  const auto charged = std::get<RoundCharge>(both.plan(1, 5, 4, 10));
  REQUIRE(charged.histogram);
  const auto histogram = dp::choose_integer_sum_parameters(
      {dp::kOneHotPairBound, 20, 2.0, 5, both.honest_survivors(5), 16, PrivacyOptions{}.stddevs_in_range});
  const auto histogram_rdp = dp::ddg_rdp(histogram, 1.0, dp::default_orders());
  REQUIRE(charged.rdp.size() == update.rdp.size());
  for (std::size_t i = 0; i < charged.rdp.size(); ++i) {
    CHECK(charged.rdp[i] == Approx(update.rdp[i] + histogram_rdp[i]));
  }
  CHECK(charged.epsilon.epsilon > update.epsilon.epsilon);
  CHECK(report.privacy->epsilon_spent == Approx(charged.epsilon.epsilon));

  // A device that can add histograms but not noise them (an earlier sotto-client) in the next cohort: the round
  // asks for none and is charged for the update alone.
  round.coordinator->on_round_recorded(round.now);
  round.noised_histograms = false;
  round.run({3, 3, 3, 3, 3});
  REQUIRE(round.closed);
  CHECK(round.last_task->secagg->evaluation_bins == 0);
  CHECK(round.last_task->secagg->noise->histogram_local_stddev == 0);
  CHECK_FALSE(round.closed->report.local_histogram);
  CHECK_THAT(round.closed->report.local_histogram_problem, Catch::Contains("under DP") &&
                                                               Catch::Contains("accuracy_histogram_dp"));
  REQUIRE(round.closed->report.privacy);
  CHECK(round.closed->report.privacy->histogram_bins == 0);
}

TEST_CASE("DP budget: fitting the noise to a target epsilon leaves room for the histograms' charge",
          "[dp][histogram]") {
  PrivacyOptions options = with_histograms(3.0);
  options.noise_multiplier = 0;
  options.target_epsilon = 10;
  PrivacyBudget without(options, 16, 0.05, 1.0, {});
  without.fit_noise_to_budget(5, 10, 100);
  PrivacyBudget with(options, 16, 0.05, 1.0, {});
  with.fit_noise_to_budget(5, 10, 100, 8);
  CHECK(with.options().noise_multiplier > without.options().noise_multiplier);
  // Five rounds of both fit the budget.
  std::vector<double> spent(dp::default_orders().size(), 0.0);
  for (int r = 1; r <= 5; ++r) {
    const auto charge = std::get<RoundCharge>(with.plan(static_cast<std::uint64_t>(r), 10, 100, 8));
    with.debit(charge);
  }
  CHECK(with.spent_released().epsilon <= 10.0 + 1e-9);
}
