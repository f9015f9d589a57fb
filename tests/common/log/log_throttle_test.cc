#include "common/log/log_throttle.h"

#include <catch2/catch.hpp>

namespace sotto::log {

TEST_CASE("a throttle lets the first occurrence through, counts the rest of the interval, then reports them",
          "[log]") {
  using namespace std::chrono_literals;
  LogThrottle throttle(5s);
  const auto t0 = LogThrottle::Clock::time_point{} + 1h;
  CHECK(throttle.admit(t0) == std::optional<std::uint64_t>(0));
  for (int i = 1; i <= 1000; ++i) CHECK_FALSE(throttle.admit(t0 + i * 1ms));
  CHECK(throttle.suppressed() == 1000);
  CHECK(throttle.admit(t0 + 5s) == std::optional<std::uint64_t>(1000));
  CHECK(throttle.suppressed() == 0);
  CHECK_FALSE(throttle.admit(t0 + 6s));
  CHECK(throttle.admit(t0 + 11s) == std::optional<std::uint64_t>(1));
}

}  // namespace sotto::log

namespace sotto::log {

TEST_CASE("a throttle with a burst tells that many per interval", "[log]") {
  using namespace std::chrono_literals;
  LogThrottle throttle(10s, 3);
  const auto t0 = LogThrottle::Clock::time_point{} + 1h;
  CHECK(throttle.admit(t0) == std::optional<std::uint64_t>(0));
  CHECK(throttle.admit(t0 + 1ms) == std::optional<std::uint64_t>(0));
  CHECK(throttle.admit(t0 + 2ms) == std::optional<std::uint64_t>(0));
  for (int i = 0; i < 50; ++i) CHECK_FALSE(throttle.admit(t0 + 1s));
  CHECK(throttle.admit(t0 + 10s) == std::optional<std::uint64_t>(50));
  CHECK(throttle.admit(t0 + 11s) == std::optional<std::uint64_t>(0));
}

}  // namespace sotto::log
