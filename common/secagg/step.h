// The four steps of a SecAgg+ round once its cohort is fixed, as the coordinator collects them, the reports time
// and count them, and the simulator's dropout plans name them. One enum for all of them, so that "step 2" means
// the masked input everywhere; `per_step` arrays are indexed by it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sotto::secagg {

enum class Step : std::uint8_t { kAdvertiseKeys = 0, kShareKeys = 1, kMaskedInput = 2, kUnmasking = 3 };

inline constexpr std::size_t kStepCount = 4;
inline constexpr std::array<Step, kStepCount> kSteps = {Step::kAdvertiseKeys, Step::kShareKeys, Step::kMaskedInput,
                                                        Step::kUnmasking};

// A value for each step (seconds, bytes, clients), indexed by Step.
template <typename T>
struct PerStep {
  std::array<T, kStepCount> values{};
  T& operator[](Step s) { return values[static_cast<std::size_t>(s)]; }
  const T& operator[](Step s) const { return values[static_cast<std::size_t>(s)]; }
};

// The step's key in rounds.jsonl ("advertise", "share_keys", "masked_input", "unmask").
constexpr std::string_view step_key(Step s) {
  switch (s) {
    case Step::kAdvertiseKeys: return "advertise";
    case Step::kShareKeys: return "share_keys";
    case Step::kMaskedInput: return "masked_input";
    case Step::kUnmasking: return "unmask";
  }
  return "?";
}

// What a client sends in the step, for messages ("advertise keys", "encrypted shares", ...).
constexpr std::string_view step_message(Step s) {
  switch (s) {
    case Step::kAdvertiseKeys: return "advertise keys";
    case Step::kShareKeys: return "encrypted shares";
    case Step::kMaskedInput: return "masked input";
    case Step::kUnmasking: return "unmask response";
  }
  return "?";
}

}  // namespace sotto::secagg
