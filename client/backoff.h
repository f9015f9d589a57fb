// Backoff: how long the client waits before reconnecting after a failed session — exponential from
// connection.backoff_initial_ms, doubling up to connection.backoff_max_ms, each wait jittered to 0.5x..1.5x so that
// a fleet of devices does not reconnect in step after an aggregator restart. reset() after a session that reached
// the aggregator.
#pragma once

#include <chrono>
#include <cstdint>

#include "common/round/random_source.h"

namespace sotto::client {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, round::RandomSource& jitter);

  // The wait before the next attempt; the one after will be twice as long (up to max).
  std::chrono::milliseconds next();
  void reset() { current_ = initial_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds current_;
  round::RandomSource& jitter_;
};

}  // namespace sotto::client
