#include "client/backoff.h"

#include <algorithm>
#include <array>

namespace sotto::client {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, round::RandomSource& jitter)
    : initial_(initial), max_(std::max(initial, max)), current_(initial), jitter_(jitter) {}

std::chrono::milliseconds Backoff::next() {
  std::array<std::uint8_t, 2> coin{};
  jitter_.fill(coin);
  const double unit = static_cast<double>(coin[0] << 8 | coin[1]) / 65536.0;  // [0, 1)
  const double factor = 0.5 + unit;                                           // 0.5x .. 1.5x
  const auto wait = std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(current_.count()) * factor));
  current_ = std::min(current_ * 2, max_);
  return wait;
}

}  // namespace sotto::client
