// LogThrottle: a few log lines per interval for an event that can repeat thousands of times a second (an accept
// that keeps failing, a flood of refused or misbehaving connections). The first `burst` occurrences of each
// interval are told; the rest are counted, and the next line that is let through says how many were not told.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace sotto::log {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LogThrottle(Clock::duration interval, std::uint32_t burst = 1) : interval_(interval), burst_(burst) {}

  // Counts one occurrence. Returns the number of occurrences not logged since the last line when this one should
  // be logged, or nullopt when it should be counted silently.
  std::optional<std::uint64_t> admit(Clock::time_point now) {
    if (!window_start_ || now - *window_start_ >= interval_) {
      window_start_ = now;
      told_in_window_ = 0;
    }
    if (told_in_window_ >= burst_) {
      ++suppressed_;
      return std::nullopt;
    }
    ++told_in_window_;
    const std::uint64_t untold = suppressed_;
    suppressed_ = 0;
    return untold;
  }

  // Occurrences counted since the last line that was let through.
  std::uint64_t suppressed() const { return suppressed_; }

 private:
  Clock::duration interval_;
  std::uint32_t burst_;
  std::optional<Clock::time_point> window_start_;
  std::uint32_t told_in_window_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace sotto::log
