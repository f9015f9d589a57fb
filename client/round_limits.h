// RoundLimits: the app's caps (DeviceLimits, client_config.h) against a round before its model is received — the
// update buffer's size, and the bytes of the last 24 hours (daily_traffic.h) with the model received and sent back
// — and what follows a decline: the device asks again after connection.eligibility_poll_s, twice as long after
// each further decline (up to an hour), and the ledger records the first decline of a run for a cap, not each one.
// Not thread-safe: the client's run loop owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "client/client_config.h"
#include "client/daily_traffic.h"

namespace sotto::client {

class RoundLimits {
 public:
  struct Declined {
    std::string cap;  // the limit's key
    std::string why;
  };
  struct AfterDecline {
    bool record = true;  // the first of a run for its cap
    std::chrono::milliseconds wait{0};
  };

  DailyTraffic& traffic() { return traffic_; }
  // Why a round whose model is `model_bytes` is declined, with `session_bytes` already spent on its session.
  std::optional<Declined> check(const DeviceLimits& limits, std::uint64_t model_bytes, std::uint64_t session_bytes);
  AfterDecline declined(const Declined& declined, std::chrono::milliseconds poll);
  // A round was taken: a run of declines ends.
  void taken();

 private:
  DailyTraffic traffic_;
  std::chrono::milliseconds wait_{0};  // after the latest of a run of declines (0: none)
  std::string last_cap_;
};

}  // namespace sotto::client
