#include "client/daily_traffic.h"

#include <catch2/catch.hpp>

using namespace sotto::client;
using namespace std::chrono_literals;

namespace {

LedgerEntry entry(std::uint64_t round, const std::string& outcome, std::uint64_t sent, std::uint64_t received,
                  DailyTraffic::Clock::time_point at) {
  LedgerEntry e{round, outcome, 10, sent, received};
  e.unix_time = std::chrono::duration<double>(at.time_since_epoch()).count();
  return e;
}

}  // namespace

TEST_CASE("daily traffic: the last 24 hours count against the cap, and older traffic ages out") {
  const auto now = DailyTraffic::Clock::now();
  DailyTraffic traffic;
  CHECK_FALSE(traffic.refuses(0, 1'000'000'000, now));  // no cap
  traffic.add(600, now - 25h);
  traffic.add(300, now - 2h);
  CHECK(traffic.used(now) == 300);
  CHECK_FALSE(traffic.refuses(1000, 700, now));
  const auto refused = traffic.refuses(1000, 701, now);
  REQUIRE(refused);
  CHECK_THAT(*refused, Catch::Contains("limits.bytes_per_day is 1000") && Catch::Contains("300 bytes") &&
                           Catch::Contains("701 more") && Catch::Contains("another 79200 s"));
  traffic.add(700, now);
  CHECK(traffic.refuses(1000, 0, now));  // the cap reached refuses even a session with nothing in it
  CHECK_FALSE(traffic.refuses(1000, 0, now + 22h + 1s));  // the 300 have aged out
}

TEST_CASE("daily traffic: after a restart a round counts once, by its largest ledger entry") {
  const auto now = DailyTraffic::Clock::now();
  DailyTraffic traffic;
  traffic.count_ledger({entry(1, "sending", 100, 5000, now - 30h), entry(1, "completed", 200, 5100, now - 30h),
                        entry(2, "sending", 100, 5000, now - 1h), entry(2, "completed", 300, 5200, now - 1h),
                        entry(3, "abandoned", 50, 60, now - 10min)},
                       now);
  CHECK(traffic.used(now) == 5500 + 110);
}
