// What the participant's tests share: a randomness source whose every draw is known, a four-weight model, a plain
// task, a trainer's result, and picking one output of a kind.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <memory>

#include "common/round/participant.h"

namespace sotto::round::fixtures {

using namespace std::chrono_literals;

// Call k fills every byte with value + k: a test knows each draw exactly — the coins' seed (value), then in a
// secure round the channel key, the mask key and the self-mask seed (value + 1, + 2, + 3).
class FakeRandom final : public RandomSource {
 public:
  explicit FakeRandom(std::uint8_t value) : value_(value) {}
  void fill(std::span<std::uint8_t> out) override {
    std::memset(out.data(), value_ + calls, out.size());
    ++calls;
  }
  int calls = 0;

 private:
  std::uint8_t value_;
};

inline model::ModelParameters weights(std::vector<float> w) {
  model::Tensor t{"w", model::DType::kFloat32, {static_cast<std::int64_t>(w.size())},
                  std::vector<std::byte>(w.size() * sizeof(float))};
  std::memcpy(t.data.data(), w.data(), t.data.size());
  return model::ModelParameters({t});
}

inline const TimePoint t0 = TimePoint{} + 1h;

inline Task plain_task(std::uint64_t round = 3) {
  Task t;
  t.round_id = round;
  t.plan.seed = 99;
  t.global_model = std::make_shared<const model::ModelParameters>(weights({1, 2, 3, 4}));
  t.deadline = 10s;
  return t;
}

template <typename T>
const T& only(const Outputs& outputs, std::size_t at = 0) {
  REQUIRE(outputs.size() > at);
  const T* value = std::get_if<T>(&outputs[at]);
  REQUIRE(value != nullptr);
  return *value;
}

inline Fitted fitted_local(std::vector<float> w, std::uint64_t examples = 10) {
  Fitted f;
  f.local_model = weights(std::move(w));
  f.metrics.num_examples = examples;
  f.metrics.mean_loss = 0.5;
  return f;
}

}  // namespace sotto::round::fixtures
