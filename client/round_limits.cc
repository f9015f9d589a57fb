#include "client/round_limits.h"

#include <algorithm>
#include <limits>

namespace sotto::client {

std::optional<RoundLimits::Declined> RoundLimits::check(const DeviceLimits& limits, std::uint64_t model_bytes,
                                                        std::uint64_t session_bytes) {
  if (limits.max_update_bytes > 0 && model_bytes > limits.max_update_bytes) {
    return Declined{"limits.max_update_bytes", "its model is " + std::to_string(model_bytes) +
                                                   " bytes, more than limits.max_update_bytes (" +
                                                   std::to_string(limits.max_update_bytes) + ")"};
  }
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  const std::uint64_t round = model_bytes > (kMax - session_bytes) / 2 ? kMax : session_bytes + 2 * model_bytes;
  auto why = traffic_.refuses(limits.bytes_per_day, round, DailyTraffic::Clock::now());
  if (!why) return std::nullopt;
  return Declined{"limits.bytes_per_day", std::move(*why)};
}

RoundLimits::AfterDecline RoundLimits::declined(const Declined& declined, std::chrono::milliseconds poll) {
  constexpr std::chrono::milliseconds kLongestWait = std::chrono::hours(1);
  AfterDecline next;
  next.record = declined.cap != last_cap_;
  last_cap_ = declined.cap;
  wait_ = wait_.count() == 0 ? poll : std::min(2 * wait_, std::max(kLongestWait, poll));
  next.wait = wait_;
  return next;
}

void RoundLimits::taken() {
  wait_ = std::chrono::milliseconds(0);
  last_cap_.clear();
}

}  // namespace sotto::client
