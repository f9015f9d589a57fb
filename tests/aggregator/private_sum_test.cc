// Private analytics without a network: the coordinator runs secure sums under each DP mode against real
// round::Participant state machines (the device's code: the bound check, its own noise share, its own accounting),
// and the published histogram is the true one plus noise of the configured variance; a contribution over the
// plan's bound is refused by the device before it sends anything.
#include <catch2/catch.hpp>
#include <cmath>

#include "aggregator/round_coordinator.h"
#include "aggregator/fedavg.h"
#include "common/dp/ddg_accounting.h"
#include "common/dp/integer_sum.h"
#include "common/round/participant.h"
#include "tests/support/coordinator_actions.h"

using namespace sotto;
using namespace sotto::aggregator;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t kBins = 8;
constexpr ConnectionId kClients = 5;

template <typename A>
std::vector<A> all(const Actions& actions) {
  return test::all_of<A>(actions);
}

template <typename O>
const O* first(const round::Outputs& outputs) {
  for (const auto& o : outputs) {
    if (auto* x = std::get_if<O>(&o)) return x;
  }
  return nullptr;
}

// Client c's histogram: one count in bin c mod kBins.
std::vector<std::uint32_t> one_hot(ConnectionId c) {
  std::vector<std::uint32_t> h(kBins, 0);
  h[c % kBins] = 1;
  return h;
}

CoordinatorOptions sum_options(PrivacyMode mode, double noise) {
  CoordinatorOptions o;
  o.total_rounds = 1;
  o.cohort_target = kClients;
  o.cohort_min = 3;
  o.secure.enabled = true;
  o.secure.complete_graph = true;
  o.clip_norm = 1;
  o.secure_sum_length = kBins;
  o.secure_sum_bound = {1, 1};  // a histogram: one count per person
  o.privacy.mode = mode;
  o.privacy.noise_multiplier = noise;
  o.privacy.min_survivors = 3;
  return o;
}

// One round: every client a Participant with its histogram; returns the round's report.
struct PrivateSumRound {
  RoundCoordinator coordinator;
  std::map<ConnectionId, round::SystemRandom> randoms;
  std::map<ConnectionId, round::Participant> devices;
  TimePoint now = TimePoint{} + 100s;

  explicit PrivateSumRound(CoordinatorOptions options)
      : coordinator(options, CoordinatorStart{model::ModelParameters{}, 1, 0, {}}, std::make_unique<FedAvg>()) {
    coordinator.start(now);
  }

  round::Task task_for(const action::SendTask& t, ConnectionId c) const {
    round::Task task;
    task.round_id = t.round_id;
    task.kind = round::TaskKind::kSecureSum;
    task.global_model = t.model;
    const auto& sa = *t.secagg;
    task.secure = round::SecureAssignment{sa.config, sa.index.at(c), sa.clip_norm, sa.bound, sa.noise};
    return task;
  }

  // The report, or nullopt if the round did not close.
  std::optional<RoundReport> run(const std::map<ConnectionId, std::vector<std::uint32_t>>& contributions) {
    Actions out;
    for (const auto& [c, h] : contributions) {
      devices.emplace(c, round::Participant({"c" + std::to_string(c), h}, randoms[c]));
      out = coordinator.on_hello(c, "c" + std::to_string(c), now);
    }
    const auto tasks = all<action::SendTask>(out);
    REQUIRE(tasks.size() == 1);
    for (auto& [c, device] : devices) {
      const auto said = device.on_task(task_for(tasks[0], c), now);
      if (const auto* keys = first<round::out::AdvertiseKeys>(said)) {
        out = coordinator.on_secagg_advertise(c, keys->keys, now);
      } else {
        out = coordinator.on_disconnect(c, "refused", now);
      }
    }
    for (const auto& dir : all<action::SendKeyDirectory>(out)) {
      const auto said = devices.at(dir.conn).on_key_directory(dir.directory, now);
      out = coordinator.on_secagg_shares(dir.conn, first<round::out::ShareKeys>(said)->shares, now);
    }
    for (const auto& s : all<action::SendShares>(out)) {
      const auto said = devices.at(s.conn).on_shares(secagg::SharesForYou{s.shares}, now);
      const auto* upload = first<round::out::Upload>(said);
      REQUIRE(upload);
      MaskedUpload u;
      u.round_id = upload->round_id;
      u.num_examples = upload->metrics.num_examples;
      u.input = std::get<secagg::MaskedInput>(upload->payload);
      out = coordinator.on_masked_input(s.conn, std::move(u), now);
    }
    for (const auto& r : all<action::SendUnmaskRequest>(out)) {
      const auto said = devices.at(r.conn).on_unmask_request(r.request, now);
      out = coordinator.on_secagg_unmask(r.conn, first<round::out::UnmaskResponse>(said)->response, now);
    }
    const auto closed = all<action::RoundClosed>(out);
    if (closed.empty()) return std::nullopt;
    return closed[0].report;
  }
};

}  // namespace

TEST_CASE("private secure sum: the published histogram is the true one plus noise of the configured variance",
          "[secagg][coordinator][dp]") {
  // Distributed: each of the five devices adds N_Z(0, sigma^2) with sigma = z·D2/sqrt(h), h = 3 - ceil(0.05·5) = 2,
  // D2 = 1 for a one-hot histogram; central: the aggregator draws sigma = z·D2 once; local: each device draws
  // sigma = z·D2 itself. Over the rounds the error has mean 0 and variance (shares)·sigma^2.
  const PrivacyMode mode = GENERATE(PrivacyMode::kDistributed, PrivacyMode::kCentral, PrivacyMode::kLocal);
  constexpr int kRounds = 60;
  constexpr double kNoise = 2;
  double sum = 0, squares = 0, expected_variance = 0;
  for (int r = 0; r < kRounds; ++r) {
    PrivateSumRound round(sum_options(mode, kNoise));
    std::map<ConnectionId, std::vector<std::uint32_t>> contributions;
    for (ConnectionId c = 1; c <= kClients; ++c) contributions[c] = one_hot(c);
    const auto report = round.run(contributions);
    REQUIRE(report);
    INFO(report->abandon_reason);
    REQUIRE(report->completed);
    REQUIRE(report->secure_sum.empty());  // only the noised, signed sum is published
    REQUIRE(report->private_sum.size() == kBins);
    REQUIRE(report->privacy);
    CHECK(report->privacy->mode == privacy_mode_name(mode));
    CHECK(report->privacy->l2_bound == 1);
    const double sigma = dp::effective_local_stddev(report->privacy->local_stddev);
    CHECK(report->privacy->local_stddev == Approx(mode == PrivacyMode::kDistributed ? kNoise / std::sqrt(2.0) : kNoise));
    expected_variance = (mode == PrivacyMode::kCentral ? 1 : 5) * sigma * sigma;
    for (std::uint64_t bin = 0; bin < kBins; ++bin) {
      double truth = 0;
      for (ConnectionId c = 1; c <= kClients; ++c) truth += one_hot(c)[bin];
      const double e = static_cast<double>(report->private_sum[bin]) - truth;
      sum += e;
      squares += e * e;
    }
    // The device charged itself the round it took part in, from its own view of the noise.
    const auto& record = round.devices.at(1).record();
    REQUIRE(record.privacy);
    CHECK(record.privacy->epsilon > 0);
  }
  // Statistical bounds as in the training DP test: mean within 5 standard errors, mean square within 6 chi-square
  // spreads of the variance (a false alarm rarer than one run in 10^5).
  const double n = static_cast<double>(kBins) * kRounds;
  CHECK(std::abs(sum / n) < 5 * std::sqrt(expected_variance / n));
  CHECK(squares / n == Approx(expected_variance).epsilon(6 * std::sqrt(2 / n)));
}

TEST_CASE("private secure sum: a contribution over the plan's bound is refused by the device and never sent",
          "[secagg][coordinator][dp]") {
  const std::uint32_t minus_two = static_cast<std::uint32_t>(-2);
  const auto over = GENERATE_COPY(std::vector<std::uint32_t>{2, 0, 0, 0, 0, 0, 0, 0},           // an entry over 1
                                  std::vector<std::uint32_t>{1, 1, 0, 0, 0, 0, 0, 0},           // L1 2 over 1
                                  std::vector<std::uint32_t>{minus_two, 0, 0, 0, 0, 0, 0, 0});  // |-2| over 1
  const bool with_dp = GENERATE(false, true);
  PrivateSumRound round(sum_options(with_dp ? PrivacyMode::kDistributed : PrivacyMode::kOff, 2));
  std::map<ConnectionId, std::vector<std::uint32_t>> contributions;
  for (ConnectionId c = 1; c <= kClients; ++c) contributions[c] = c == 3 ? over : one_hot(c);
  const auto report = round.run(contributions);
  const auto& refused = round.devices.at(3);
  CHECK(refused.finished());
  CHECK_FALSE(refused.record().sent);
  REQUIRE(report);
  REQUIRE(report->completed);  // the four others' round goes on
  CHECK(report->survivors == 4);
  if (with_dp) {
    CHECK(report->private_sum.size() == kBins);
  } else {
    std::vector<std::uint32_t> expected(kBins, 0);
    for (ConnectionId c : {1, 2, 4, 5}) expected[c % kBins] += 1;
    CHECK(report->secure_sum == expected);
  }
}

TEST_CASE("the refusal names the entry and the bound", "[secagg][dp]") {
  round::SystemRandom random;
  round::Participant device({"c1", std::vector<std::uint32_t>{0, 5, 0}}, random);
  round::Task task;
  task.round_id = 1;
  task.kind = round::TaskKind::kSecureSum;
  task.global_model = std::make_shared<const model::ModelParameters>();
  task.secure = round::SecureAssignment{{1, 3, 2, 2, 3, 32}, 0, 1, {4, 0}, std::nullopt};
  const auto said = device.on_task(task, TimePoint{});
  REQUIRE(said.size() == 1);
  const auto& finish = std::get<round::out::Finish>(said[0]);
  CHECK(finish.outcome == round::out::Outcome::kRefused);
  CHECK(finish.fatal);
  CHECK_THAT(finish.message, Catch::Contains("entry 1 is 5, over the plan's L-infinity bound 4"));
}

TEST_CASE("integer-sum sensitivities and parameters follow from the bound", "[dp]") {
  using dp::ContributionBound;
  CHECK(dp::l2_sensitivity(ContributionBound{1, 1}, 10) == 1);
  CHECK(dp::l1_sensitivity(ContributionBound{1, 0}, 10) == 10);
  CHECK(dp::l2_sensitivity(ContributionBound{1, 0}, 10) == Approx(std::sqrt(10.0)));
  CHECK(dp::l2_sensitivity(ContributionBound{3, 7}, 10) == Approx(std::sqrt(9 + 9 + 1.0)));  // 3 + 3 + 1
  CHECK(dp::l2_sensitivity(ContributionBound{0, 7}, 10) == 7);  // L1 alone bounds every entry too
  CHECK(dp::l1_sensitivity(ContributionBound{2, 100}, 10) == 20);
  CHECK_FALSE(dp::bound_violation(std::vector<std::uint32_t>{3, 3, 1}, ContributionBound{3, 7}));
  CHECK(dp::bound_violation(std::vector<std::uint32_t>{3, 3, 2}, ContributionBound{3, 7}));
  const auto p = dp::choose_integer_sum_parameters({{1, 1}, 64, 2.0, 100, 4, 32});
  CHECK(p.scale == 1);
  CHECK(p.padded == 64);
  CHECK(p.l2_bound == 1);
  CHECK(p.local_stddev == Approx(1.0));
  // 16 bits hold 100 counts of up to 100 each, but not 1000 of them with their noise.
  CHECK_NOTHROW(dp::choose_integer_sum_parameters({{100, 0}, 4, 1.0, 100, 10, 16}));
  CHECK_THROWS_WITH(dp::choose_integer_sum_parameters({{1000, 0}, 4, 1.0, 100, 10, 16}),
                    Catch::Contains("do not fit in 16 signed bits"));
  CHECK_THROWS_WITH(dp::choose_integer_sum_parameters({{}, 4, 1.0, 100, 10, 32}), Catch::Contains("no bound"));
}
