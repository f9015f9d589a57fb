#include "client/backoff.h"

#include <catch2/catch.hpp>
#include <cstring>

using namespace sotto;
using namespace std::chrono_literals;

namespace {

// Every coin is the same byte: 0x00 gives the shortest wait (0.5x), 0x80 the nominal one (1.0x).
class FixedCoins final : public round::RandomSource {
 public:
  explicit FixedCoins(std::uint8_t byte) : byte_(byte) {}
  void fill(std::span<std::uint8_t> out) override { std::memset(out.data(), byte_, out.size()); }

 private:
  std::uint8_t byte_;
};

}  // namespace

TEST_CASE("backoff doubles up to its maximum and starts again after reset", "[backoff]") {
  FixedCoins nominal(0x80);
  client::Backoff backoff(100ms, 350ms, nominal);
  CHECK(backoff.next() == 100ms);
  CHECK(backoff.next() == 200ms);
  CHECK(backoff.next() == 350ms);
  CHECK(backoff.next() == 350ms);
  backoff.reset();
  CHECK(backoff.next() == 100ms);
}

TEST_CASE("backoff jitters each wait between half and one and a half times", "[backoff]") {
  FixedCoins low(0x00), high(0xFF);
  CHECK(client::Backoff(1000ms, 8000ms, low).next() == 500ms);
  CHECK(client::Backoff(1000ms, 8000ms, high).next() == 1499ms);
}
