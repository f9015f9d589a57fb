#include "aggregator/secure_aggregation.h"

#include <catch2/catch.hpp>

#include "common/secagg/client_session.h"

using namespace sotto;
using namespace sotto::aggregator;
using namespace std::chrono_literals;

namespace {

const std::vector<std::pair<ConnectionId, std::string>> kCohort = {{11, "a"}, {12, "b"}, {13, "c"}, {14, "d"}};

std::unique_ptr<SecureAggregationRound> begin_round(TimePoint now) {
  SecureAggregationOptions options;
  options.enabled = true;
  auto begun = SecureAggregationRound::begin(options, 30.0, 7, kCohort, 8, false, now, now + 10s);
  REQUIRE(std::holds_alternative<std::unique_ptr<SecureAggregationRound>>(begun));
  return std::move(std::get<std::unique_ptr<SecureAggregationRound>>(begun));
}

}  // namespace

TEST_CASE("SecureAggregationRound refuses a cohort too small for secure aggregation with its reason",
          "[secure_aggregation]") {
  SecureAggregationOptions options;
  auto begun = SecureAggregationRound::begin(options, 30.0, 1, {{1, "a"}, {2, "b"}}, 8, true, {}, {});
  REQUIRE(std::holds_alternative<std::string>(begun));
  CHECK_THAT(std::get<std::string>(begun), Catch::Contains("at least 3 clients"));
}

TEST_CASE("SecureAggregationRound refuses messages out of turn and from strangers without throwing",
          "[secure_aggregation]") {
  const TimePoint t0 = TimePoint{} + 100s;
  auto round = begin_round(t0);
  CHECK(round->step() == secagg::Step::kAdvertiseKeys);
  CHECK(round->deadline() == t0 + 10s);
  CHECK(round->assignment().index.size() == 4);

  auto masked = round->on_masked_input(11, secagg::MaskedInput{std::vector<std::uint32_t>(8)});
  REQUIRE(masked);
  CHECK(masked->code == v1::ERROR_CODE_UNEXPECTED_MESSAGE);
  CHECK_THAT(masked->message, Catch::Contains("out of order"));

  auto stranger = round->on_advertise(99, secagg::AdvertiseKeys{});
  REQUIRE(stranger);
  CHECK_THAT(stranger->message, Catch::Contains("not in this secure round"));

  // Real keys from each client's session: accepted; the same keys twice are refused by the session.
  std::vector<secagg::ClientSession> sessions;
  for (secagg::ClientIndex i = 0; i < 4; ++i) {
    sessions.emplace_back(round->assignment().config, i, std::vector<std::uint32_t>(8, i));
  }
  const auto keys0 = sessions[0].start();
  CHECK_FALSE(round->on_advertise(11, keys0));
  auto repeated = round->on_advertise(11, keys0);
  REQUIRE(repeated);
  CHECK(repeated->code == v1::ERROR_CODE_UNEXPECTED_MESSAGE);  // 11 has answered this step already
  auto copied = round->on_advertise(12, keys0);
  REQUIRE(copied);
  CHECK(copied->code == v1::ERROR_CODE_INVALID_UPDATE);  // the session refuses repeated public keys
  CHECK(round->report().completed[secagg::Step::kAdvertiseKeys] == 1);
  CHECK(round->late() == std::vector<ConnectionId>{12, 13, 14});
  CHECK_FALSE(round->step_complete());
}

TEST_CASE("SecureAggregationRound closes a step with too few clients as a failure, not an exception",
          "[secure_aggregation]") {
  const TimePoint t0 = TimePoint{} + 100s;
  auto round = begin_round(t0);
  secagg::ClientSession only(round->assignment().config, 0, std::vector<std::uint32_t>(8));
  CHECK_FALSE(round->on_advertise(11, only.start()));
  for (ConnectionId gone : {12, 13, 14}) round->leave(gone);
  CHECK(round->step_complete());
  Actions out;
  auto outcome = round->close_step(t0 + 3s, out);
  REQUIRE(std::holds_alternative<SecureAggregationRound::Failed>(outcome));
  CHECK_THAT(std::get<SecureAggregationRound::Failed>(outcome).reason, Catch::Contains("below the threshold"));
  CHECK(out.empty());
  CHECK(round->report().seconds[secagg::Step::kAdvertiseKeys] == Approx(3.0));
}
