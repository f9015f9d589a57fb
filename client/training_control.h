// TrainingControl: how the client library stops a training run between batches — Client::cancel(), stop(), the
// person's opt-out, or the device becoming ineligible (the app's eligibility check, asked before every batch). The
// trainer calls next_batch() before each batch and runs it only on true. Checking and counting are one step under
// the control's lock, so once stop() has returned no batch starts: a test can count on it. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "common/util/error.h"

namespace sotto::client {

// Why the device may not take part now (e.g. "on battery"), or nothing when it may.
using EligibilityCheck = std::function<std::optional<std::string>()>;

// Thrown by a trainer whose run was stopped; the round is abandoned with the reason.
class TrainingStopped : public Error {
 public:
  using Error::Error;
};

class TrainingControl {
 public:
  explicit TrainingControl(EligibilityCheck eligibility = {}) : eligibility_(std::move(eligibility)) {}

  // Before each batch: true to run it (counted), false once the run must stop (and from then on).
  bool next_batch();
  // From any thread; after it returns next_batch() is false. The first reason given is kept.
  void stop(const std::string& reason);
  // Once `at` has passed, next_batch() stops the run with `reason` (the round's wall-time cap).
  void stop_at(std::chrono::steady_clock::time_point at, std::string reason);
  std::optional<std::string> stop_reason() const;
  std::uint64_t batches_started() const;

 private:
  EligibilityCheck eligibility_;
  mutable std::mutex mutex_;
  std::optional<std::string> reason_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::string deadline_reason_;
  std::uint64_t started_ = 0;
};

}  // namespace sotto::client
