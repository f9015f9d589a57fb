#include "client/training_control.h"

namespace sotto::client {

bool TrainingControl::next_batch() {
  // The app's check runs outside the lock (it may be slow); a stop() meanwhile still wins below.
  const std::optional<std::string> ineligible = eligibility_ ? eligibility_() : std::nullopt;
  std::lock_guard lock(mutex_);
  if (!reason_ && ineligible) reason_ = "the device is no longer eligible: " + *ineligible;
  if (!reason_ && deadline_ && std::chrono::steady_clock::now() >= *deadline_) reason_ = deadline_reason_;
  if (reason_) return false;
  ++started_;
  return true;
}

void TrainingControl::stop(const std::string& reason) {
  std::lock_guard lock(mutex_);
  if (!reason_) reason_ = reason;
}

void TrainingControl::stop_at(std::chrono::steady_clock::time_point at, std::string reason) {
  std::lock_guard lock(mutex_);
  deadline_ = at;
  deadline_reason_ = std::move(reason);
}

std::optional<std::string> TrainingControl::stop_reason() const {
  std::lock_guard lock(mutex_);
  return reason_;
}

std::uint64_t TrainingControl::batches_started() const {
  std::lock_guard lock(mutex_);
  return started_;
}

}  // namespace sotto::client
