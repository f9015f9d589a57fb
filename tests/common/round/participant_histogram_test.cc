// Accuracy histograms in a secure round, without a network: each participant adds the one-hot bins of its held-out
// accuracies to its masked input when the device allows it (in the clear or by secure sum only), zeros when it does
// not, and sends no clear report in that round; a real secagg::ServerSession's sum holds the counts. Also the
// histogram's own arithmetic (bins, reading a sum, the spread at the midpoints) and the assignment's checks.
#include <catch2/catch.hpp>
#include <functional>

#include "common/dp/ddg_encoding.h"
#include "common/dp/ddg_parameters.h"
#include "common/ml/accuracy_histogram.h"
#include "common/round/message_codec.h"
#include "common/secagg/quantizer.h"
#include "common/secagg/server_session.h"
#include "common/util/error.h"
#include "tests/common/round/participant_fixtures.h"

namespace sotto::round {
namespace {

using namespace fixtures;

constexpr std::uint32_t kBins = 4;

Fitted fitted_with_evaluation(std::vector<float> w, double global, double personal) {
  Fitted f = fitted_local(std::move(w));
  f.local_evaluation = ml::LocalEvaluation{20, global, personal};
  return f;
}

// The participants through a whole secure round against a real ServerSession: task i is `assignment(i)`, fitted
// with accuracies[i] held out; each upload goes to `seen` first. The unmasked sum.
std::vector<std::uint32_t> secure_round_sum(std::vector<Participant>& participants, const secagg::RoundConfig& config,
                                            const std::function<SecureAssignment(std::uint32_t)>& assignment,
                                            const std::vector<std::pair<double, double>>& accuracies,
                                            const std::function<void(const out::Upload&)>& seen = {}) {
  const auto n = static_cast<std::uint32_t>(participants.size());
  secagg::ServerSession server{config};
  for (std::uint32_t i = 0; i < n; ++i) {
    Task task = plain_task(5);
    task.secure = assignment(i);
    only<out::Fit>(participants[i].on_task(task, t0));
    const auto fitted = fitted_with_evaluation({1.5f, 2, 3, 4}, accuracies[i].first, accuracies[i].second);
    server.on_advertise(i, only<out::AdvertiseKeys>(participants[i].on_fitted(fitted, t0)).keys);
  }
  const auto directories = server.close_advertise();
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto shared = only<out::ShareKeys>(participants[i].on_key_directory(directories.at(i), t0));
    server.on_encrypted_shares(i, {shared.shares});
  }
  auto shares = server.close_share_keys();
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto upload = only<out::Upload>(participants[i].on_shares(shares[i], t0));
    if (seen) seen(upload);
    server.on_masked_input(i, std::get<secagg::MaskedInput>(upload.payload));
  }
  auto requests = server.close_masked_input();
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto answer = only<out::UnmaskResponse>(participants[i].on_unmask_request(requests[i], t0));
    server.on_unmask_response(i, answer.response);
  }
  return server.close_unmasking().sum;
}

}  // namespace

TEST_CASE("a secure round carries the accuracy histograms of the devices that allow it, and no clear report",
          "[round][participant][secagg][histogram]") {
  constexpr std::uint32_t n = 3;
  const secagg::RoundConfig config{5, n, 2, 2, 4 + 2 * kBins, 32};
  std::vector<FakeRandom> randoms{FakeRandom(16), FakeRandom(32), FakeRandom(48)};
  std::vector<Participant> participants;
  for (std::uint32_t i = 0; i < n; ++i) {
    ParticipantOptions options{"c" + std::to_string(i), {}};
    options.report_local_evaluation = i == 0;     // in the clear (and so in a secure sum too)
    options.report_local_in_secure_sum = i == 1;  // by secure sum only; c2 reports nothing
    participants.emplace_back(options, randoms[i]);
  }
  const std::vector<std::pair<double, double>> accuracies = {{0.3, 0.9}, {0.55, 1.0}, {0.1, 0.2}};
  const auto sum = secure_round_sum(
      participants, config, [&](std::uint32_t i) { return SecureAssignment{config, i, 10.0, {}, std::nullopt, kBins}; },
      accuracies, [](const out::Upload& upload) {
        CHECK_FALSE(upload.local_evaluation.has_value());  // the histogram replaces the clear report
      });
  REQUIRE(sum.size() == 4 + 2 * kBins);
  // c0: global 0.3 -> bin 1, personal 0.9 -> bin 3; c1: 0.55 -> bin 2, 1.0 -> bin 3 (the last bin holds 1.0).
  CHECK(std::vector<std::uint32_t>(sum.begin() + 4, sum.end()) == std::vector<std::uint32_t>{0, 1, 1, 0, 0, 0, 0, 2});
  // The update words are the quantized deltas, as in a round without histograms.
  const secagg::Quantizer quantizer({10.0, n, 32});
  CHECK(quantizer.decode_sum(std::vector<std::uint32_t>(sum.begin(), sum.begin() + 4))[0] ==
        Approx(3 * 0.5).margin(1e-6));
}

TEST_CASE("under distributed DP each device adds its own noise share to its histogram words",
          "[round][participant][secagg][histogram][dp]") {
  constexpr std::uint32_t n = 3;
  const dp::DdgParameters ddg = dp::choose_ddg_parameters({16, 10.0, 1.0, n, 2, 4});
  REQUIRE(ddg.padded == 4);
  const secagg::RoundConfig config{5, n, 2, 2, ddg.padded + 2 * kBins, 16};
  std::vector<FakeRandom> randoms{FakeRandom(16), FakeRandom(32), FakeRandom(48)};
  std::vector<Participant> participants;
  for (std::uint32_t i = 0; i < n; ++i) {
    ParticipantOptions options{"c" + std::to_string(i), {}};
    options.report_local_in_secure_sum = true;
    participants.emplace_back(options, randoms[i]);
  }
  DistributedNoise noise{ddg, {}, n, 0};
  noise.histogram_local_stddev = 3.0;
  const auto sum = secure_round_sum(
      participants, config, [&](std::uint32_t i) { return SecureAssignment{config, i, 10.0, {}, noise, kBins}; },
      {{0.3, 0.9}, {0.55, 1.0}, {0.1, 0.2}});
  REQUIRE(sum.size() == ddg.padded + 2 * kBins);
  // Without noise: global bins 0, 1, 2 (0.1, 0.3, 0.55), personal 0, 3, 3 (0.2, 0.9, 1.0). Three shares of sigma 3
  // move them (every bin staying put has a chance below 10^-8).
  const auto released = dp::signed_values(std::vector<std::uint32_t>(sum.begin() + 4, sum.end()), 16);
  const std::vector<std::int64_t> exact{1, 1, 1, 0, 1, 0, 0, 2};
  CHECK(released != exact);
  double squares = 0;
  for (std::size_t b = 0; b < released.size(); ++b) {
    squares += static_cast<double>((released[b] - exact[b]) * (released[b] - exact[b]));
  }
  CHECK(squares / released.size() < 27 * 9);  // within a loose bound of the noise's variance, 3 · 9 per bin
  for (auto& p : participants) CHECK(p.record().privacy.has_value());  // each charged itself
}

TEST_CASE("an update without room for the histogram's words is refused, as any length mismatch",
          "[round][participant][secagg][histogram]") {
  FakeRandom random(16);
  Participant p({"c0", {}}, random);
  Task task = plain_task(5);
  task.secure = SecureAssignment{{5, 3, 2, 2, 4 + 2, 32}, 0, 10.0, {}, std::nullopt, 2};
  only<out::Fit>(p.on_task(task, t0));
  const auto refused = p.on_fitted(fitted_with_evaluation({1.5f, 2, 3, 4}, 0.5, 0.7), t0);
  CHECK_THAT(only<out::ReportError>(refused).message, Catch::Contains("expects 2 values, the update has 4"));
}

TEST_CASE("accuracy histograms: bins, reading a sum and the spread at the midpoints", "[ml][histogram]") {
  CHECK(ml::accuracy_bin(0.0, 10) == 0);
  CHECK(ml::accuracy_bin(0.099, 10) == 0);
  CHECK(ml::accuracy_bin(0.1, 10) == 1);
  CHECK(ml::accuracy_bin(1.0, 10) == 9);
  CHECK(ml::accuracy_bin(std::nan(""), 10) == 0);
  CHECK(ml::accuracy_histogram_words(std::nullopt, 2) == std::vector<std::uint32_t>{0, 0, 0, 0});
  CHECK(ml::accuracy_histogram_words(ml::LocalEvaluation{0, 0.9, 0.9}, 2) == std::vector<std::uint32_t>{0, 0, 0, 0});
  CHECK(ml::accuracy_histogram_words(ml::LocalEvaluation{5, 0.2, 0.9}, 2) == std::vector<std::uint32_t>{1, 0, 0, 1});

  const std::vector<std::uint32_t> summed = {1, 2, 0, 1, 0, 0, 1, 3};  // 4 bins: 4 devices each
  const auto reading = ml::read_accuracy_histogram(summed, 4, 5);
  REQUIRE(reading.histogram);
  CHECK(reading.histogram->devices() == 4);
  // Midpoints 0.125, 0.375, 0.625, 0.875: global {0.125, 0.375, 0.375, 0.875}.
  const auto global = ml::spread_of_histogram(reading.histogram->global);
  CHECK(global.mean == Approx(0.4375));
  CHECK(global.median == Approx(0.375));
  CHECK(global.p10 == Approx(0.125 + 0.3 * 0.25));
  CHECK(ml::spread_of_histogram(reading.histogram->personal).mean == Approx((0.625 + 3 * 0.875) / 4));

  CHECK_THAT(ml::read_accuracy_histogram(summed, 4, 3).inconsistency, Catch::Contains("more devices (4) than the 3"));
  const std::vector<std::uint32_t> uneven = {1, 1, 0, 0, 0, 0, 0, 1};
  CHECK_THAT(ml::read_accuracy_histogram(uneven, 4, 5).inconsistency, Catch::Contains("2 global and 1 personal"));
  const std::vector<std::uint32_t> wrapped = {0xFFFFFFFFu, 1, 0, 0, 0, 0, 0, 0};  // a device's "-1"
  CHECK_FALSE(ml::read_accuracy_histogram(wrapped, 4, 5).histogram);
  CHECK_THROWS_AS(ml::read_accuracy_histogram(summed, 3, 5), std::invalid_argument);
}

TEST_CASE("a secure assignment's accuracy histogram survives the wire and is checked", "[round][codec][histogram]") {
  SecureAssignment a{{5, 3, 2, 2, 4 + 2 * kBins, 32}, 1, 10.0, {}, std::nullopt, kBins};
  a.config.graph_seed.fill(7);
  CHECK(from_proto(to_proto(a), 5).evaluation_bins == kBins);
  a.evaluation_bins = ml::kMaxAccuracyBins + 1;
  CHECK_THROWS_WITH(from_proto(to_proto(a), 5), Catch::Contains("is over the most"));
  a.evaluation_bins = 2;
  a.config.vector_length = 4;
  CHECK_THROWS_WITH(from_proto(to_proto(a), 5), Catch::Contains("has no room for the update"));
  a.config.vector_length = 8;
  a.bound.linf = 1;
  CHECK_THROWS_WITH(from_proto(to_proto(a), 5), Catch::Contains("only a training round"));

  // Under DP the histograms need their own distributed noise share, and a share needs histograms.
  const dp::DdgParameters ddg = dp::choose_ddg_parameters({16, 10.0, 1.0, 3, 2, 4});
  SecureAssignment noised{{5, 3, 2, 2, ddg.padded + 2 * kBins, 16}, 1, 10.0, {}, DistributedNoise{ddg, {}, 3, 0},
                          kBins};
  noised.config.graph_seed.fill(7);
  CHECK_THROWS_WITH(from_proto(to_proto(noised), 5), Catch::Contains("positive, finite histogram_local_stddev"));
  noised.noise->histogram_local_stddev = 2.0;
  CHECK(from_proto(to_proto(noised), 5).noise->histogram_local_stddev == 2.0);
  noised.noise->source = NoiseSource::kAggregator;
  CHECK_THROWS_WITH(from_proto(to_proto(noised), 5), Catch::Contains("need distributed noise"));
  noised.noise->source = NoiseSource::kShares;
  noised.evaluation_bins = 0;
  noised.config.vector_length = ddg.padded;
  CHECK_THROWS_WITH(from_proto(to_proto(noised), 5), Catch::Contains("without accuracy histograms"));
}

}  // namespace sotto::round
