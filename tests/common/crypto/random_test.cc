#include "common/crypto/random.h"

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <new>

#include "common/crypto/secret.h"
#include "common/util/error.h"

namespace sotto::crypto {

TEST_CASE("random_bytes fills the whole span with fresh bytes each call", "[crypto][random]") {
  std::array<std::uint8_t, 64> a{}, b{};
  random_bytes(a);
  random_bytes(b);
  CHECK(a != b);
  // 64 zero bytes from a working CSPRNG has probability 2^-512; neither may keep its initial zeros at the end.
  CHECK(std::any_of(a.begin(), a.end(), [](std::uint8_t v) { return v != 0; }));
  CHECK(std::any_of(a.end() - 8, a.end(), [](std::uint8_t v) { return v != 0; }));
  random_bytes({});  // an empty span is fine
}

TEST_CASE("random_below stays below its bound and reaches every value", "[crypto][random]") {
  std::array<int, 10> hits{};
  for (int i = 0; i < 2000; ++i) {
    const std::uint64_t v = random_below(10);
    REQUIRE(v < 10);
    ++hits[v];
  }
  // Each value expects 200 hits; below 100 is a 7-sigma event.
  for (int h : hits) CHECK(h > 100);
  CHECK(random_below(1) == 0);
  CHECK_THROWS_AS(random_below(0), Error);
}

TEST_CASE("a SecretArray wipes its bytes when it is destroyed", "[crypto][secret]") {
  alignas(SecretArray<32>) std::uint8_t storage[sizeof(SecretArray<32>)];
  auto* secret = new (storage) SecretArray<32>;
  secret->fill(0xab);
  REQUIRE(storage[0] == 0xab);
  secret->~SecretArray<32>();
  CHECK(std::all_of(std::begin(storage), std::end(storage), [](std::uint8_t v) { return v == 0; }));
}

}  // namespace sotto::crypto
