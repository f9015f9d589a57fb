#include "client/round_limits.h"

#include <catch2/catch.hpp>

using namespace sotto::client;
using namespace std::chrono_literals;

TEST_CASE("round limits: a model over the update buffer's cap or the day's bytes is declined, saturating") {
  RoundLimits limits;
  DeviceLimits caps;
  CHECK_FALSE(limits.check(caps, 1'000'000'000, 0));  // no caps
  caps.max_update_bytes = 1000;
  const auto big = limits.check(caps, 1001, 0);
  REQUIRE(big);
  CHECK(big->cap == "limits.max_update_bytes");
  caps = DeviceLimits{};
  caps.bytes_per_day = 10'000;
  CHECK_FALSE(limits.check(caps, 4000, 2000));  // 2000 + 2 x 4000 fits
  CHECK(limits.check(caps, 4001, 2000)->cap == "limits.bytes_per_day");
  CHECK(limits.check(caps, ~0ull / 2, 5));  // would wrap around: declined, not waved through
}

TEST_CASE("round limits: declines wait twice as long each time, and only a run's first is recorded") {
  RoundLimits limits;
  const RoundLimits::Declined buffer{"limits.max_update_bytes", "too big"};
  const RoundLimits::Declined daily{"limits.bytes_per_day", "too much today"};
  auto first = limits.declined(buffer, 5s);
  CHECK(first.record);
  CHECK(first.wait == 5s);
  auto second = limits.declined(buffer, 5s);
  CHECK_FALSE(second.record);
  CHECK(second.wait == 10s);
  CHECK(limits.declined(daily, 5s).record);  // another cap: recorded
  for (int i = 0; i < 20; ++i) limits.declined(daily, 5s);
  CHECK(limits.declined(daily, 5s).wait == std::chrono::hours(1));  // at most an hour
  limits.taken();
  auto after = limits.declined(daily, 5s);
  CHECK(after.record);
  CHECK(after.wait == 5s);
}
