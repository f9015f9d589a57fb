// DailyTraffic: the bytes this device has sent and received over the last 24 hours, against the app's cap
// (limits.bytes_per_day). Each session's bytes are counted when it ends. After a restart the ledger's entries of
// the last 24 hours count instead (a round's largest entry: its byte figures are the session's running totals);
// sessions that ended before a task arrived are not in the ledger and are forgotten then. Not thread-safe: the
// client's run loop owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "client/ledger.h"

namespace sotto::client {

class DailyTraffic {
 public:
  using Clock = std::chrono::system_clock;
  static constexpr std::chrono::hours kWindow{24};

  // Counts the ledger's rounds of the last 24 hours before `now`.
  void count_ledger(const std::vector<LedgerEntry>& entries, Clock::time_point now);
  void add(std::uint64_t bytes, Clock::time_point now);
  // The bytes of the last 24 hours before `now`.
  std::uint64_t used(Clock::time_point now);
  // Why `more` bytes now would pass `cap` (what was used, the cap, and when room comes back), or nothing; the
  // cap already reached refuses even 0 more. cap 0: no cap.
  std::optional<std::string> refuses(std::uint64_t cap, std::uint64_t more, Clock::time_point now);

 private:
  struct Sent {
    Clock::time_point at;
    std::uint64_t bytes;
  };
  void forget_before(Clock::time_point cutoff);

  std::deque<Sent> sessions_;  // oldest first
};

}  // namespace sotto::client
