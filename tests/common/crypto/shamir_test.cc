#include "common/crypto/shamir.h"

#include <openssl/bn.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <numeric>
#include <vector>

#include "common/crypto/random.h"
#include "common/util/error.h"

namespace sotto::crypto {
namespace {

// k distinct shares chosen uniformly at random (partial Fisher-Yates with the CSPRNG).
std::vector<Share> random_subset(const std::vector<Share>& shares, std::size_t k) {
  std::vector<std::size_t> order(shares.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::vector<Share> subset;
  for (std::size_t i = 0; i < k; ++i) {
    std::swap(order[i], order[i + random_below(order.size() - i)]);
    subset.push_back(shares[order[i]]);
  }
  return subset;
}

using BnPtr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;

BnPtr shamir_prime() {
  BIGNUM* p = nullptr;
  REQUIRE(BN_hex2bn(&p, std::string(kShamirPrimeHex).c_str()) > 0);
  return BnPtr(p, &BN_free);
}

}  // namespace

TEST_CASE("Shamir reconstructs the secret from any t of n shares", "[crypto][shamir]") {
  const struct {
    std::uint32_t t, n;
  } configs[] = {{2, 2}, {2, 5}, {3, 3}, {3, 10}, {3, 50}, {10, 10}, {10, 37}, {10, 200}};
  for (const auto [t, n] : configs) {
    CAPTURE(t, n);
    const auto secret = random_secret<kShamirSecretBytes>();
    const auto shares = split(secret, t, n);
    REQUIRE(shares.size() == n);
    for (std::uint32_t i = 0; i < n; ++i) REQUIRE(shares[i].x == i + 1);
    for (int trial = 0; trial < 5; ++trial) {
      CHECK(reconstruct(random_subset(shares, t), t) == secret);
      // More than t shares work too.
      CHECK(reconstruct(random_subset(shares, std::min(n, t + 1 + static_cast<std::uint32_t>(trial))), t) == secret);
    }
  }
}

TEST_CASE("Shamir shares a secret among 10000 holders and any 5 reconstruct it", "[crypto][shamir]") {
  const auto secret = random_secret<kShamirSecretBytes>();
  const auto shares = split(secret, 5, 10000);
  REQUIRE(shares.size() == 10000);
  for (int trial = 0; trial < 5; ++trial) CHECK(reconstruct(random_subset(shares, 5), 5) == secret);
  // The extreme holders: the first and the last five.
  CHECK(reconstruct(std::span(shares).first(5), 5) == secret);
  CHECK(reconstruct(std::span(shares).last(5), 5) == secret);
}

TEST_CASE("Shamir edge secrets of all zeros and all ones reconstruct", "[crypto][shamir]") {
  ShamirSecret zeros{}, ones{};
  ones.fill(0xff);
  for (const auto& secret : {zeros, ones}) {
    const auto shares = split(secret, 3, 7);
    CHECK(reconstruct(random_subset(shares, 3), 3) == secret);
  }
}

TEST_CASE("Shamir reconstruction refuses t - 1 shares", "[crypto][shamir]") {
  for (std::uint32_t t : {2u, 3u, 10u}) {
    CAPTURE(t);
    const auto secret = random_secret<kShamirSecretBytes>();
    const auto shares = split(secret, t, 20);
    const auto too_few = random_subset(shares, t - 1);
    CHECK_THROWS_AS(reconstruct(too_few, t), Error);
    // Claiming a lower threshold does not help: t - 1 points of a degree t - 1 polynomial say nothing about f(0).
    if (t - 1 >= 2) CHECK(reconstruct(too_few, t - 1) != secret);
  }
}

TEST_CASE("Shamir shares of the same secret differ from one split to the next", "[crypto][shamir]") {
  const auto secret = random_secret<kShamirSecretBytes>();
  const auto a = split(secret, 3, 5);
  const auto b = split(secret, 3, 5);
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].y != b[i].y);
  // No share carries the secret in the clear.
  for (const Share& s : a) CHECK(!std::equal(secret.begin(), secret.end(), s.y.begin() + 1));
}

TEST_CASE("Shamir reconstruction refuses duplicate zero or out-of-range x", "[crypto][shamir]") {
  const auto secret = random_secret<kShamirSecretBytes>();
  auto shares = split(secret, 3, 5);

  auto duplicate = std::vector<Share>{shares[0], shares[1], shares[1]};
  CHECK_THROWS_AS(reconstruct(duplicate, 3), Error);
  // A duplicate beyond the first t shares is refused too.
  duplicate = {shares[0], shares[1], shares[2], shares[0]};
  CHECK_THROWS_AS(reconstruct(duplicate, 3), Error);

  auto zero_x = std::vector<Share>{shares[0], shares[1], shares[2]};
  zero_x[2].x = 0;
  CHECK_THROWS_AS(reconstruct(zero_x, 3), Error);

  auto big_x = std::vector<Share>{shares[0], shares[1], shares[2]};
  big_x[2].x = kShamirMaxHolders + 1;
  CHECK_THROWS_AS(reconstruct(big_x, 3), Error);

  CHECK_THROWS_AS(reconstruct(std::span(shares).first(3), 1), Error);
  CHECK_THROWS_AS(reconstruct({}, 2), Error);
}

TEST_CASE("Shamir reconstruction refuses a share value outside the field", "[crypto][shamir]") {
  const auto secret = random_secret<kShamirSecretBytes>();
  auto shares = split(secret, 3, 5);
  // p itself is the smallest value outside the field.
  const BnPtr p = shamir_prime();
  REQUIRE(BN_bn2binpad(p.get(), shares[1].y.data(), static_cast<int>(kShamirValueBytes)) ==
          static_cast<int>(kShamirValueBytes));
  CHECK_THROWS_AS(reconstruct(std::span(shares).first(3), 3), Error);
  CHECK_THROWS_AS(Share::from_bytes(shares[1].to_bytes()), Error);
  shares[1].y.fill(0xff);
  CHECK_THROWS_AS(reconstruct(std::span(shares).first(3), 3), Error);
}

TEST_CASE("Shamir split refuses thresholds outside 2..n and too many holders", "[crypto][shamir]") {
  const auto secret = random_secret<kShamirSecretBytes>();
  CHECK_THROWS_AS(split(secret, 0, 5), Error);
  CHECK_THROWS_AS(split(secret, 1, 5), Error);
  CHECK_THROWS_AS(split(secret, 6, 5), Error);
  CHECK_THROWS_AS(split(secret, 2, kShamirMaxHolders + 1), Error);
  CHECK(split(secret, 5, 5).size() == 5);
}

TEST_CASE("a Shamir share round-trips through its fixed-size bytes", "[crypto][shamir]") {
  const auto secret = random_secret<kShamirSecretBytes>();
  const auto shares = split(secret, 3, 300);
  std::vector<Share> parsed;
  for (const Share& s : {shares[0], shares[255], shares[299]}) {
    const auto bytes = s.to_bytes();
    REQUIRE(bytes.size() == kShamirShareBytes);
    CHECK(bytes[0] == 0);
    CHECK(bytes[2] == static_cast<std::uint8_t>(s.x >> 8));
    CHECK(bytes[3] == static_cast<std::uint8_t>(s.x));
    const Share back = Share::from_bytes(bytes);
    CHECK(back.x == s.x);
    CHECK(back.y == s.y);
    parsed.push_back(back);
  }
  CHECK(reconstruct(parsed, 3) == secret);
}

TEST_CASE("Shamir share bytes of the wrong length or with a bad x are refused", "[crypto][shamir]") {
  const auto shares = split(random_secret<kShamirSecretBytes>(), 2, 3);
  const auto bytes = shares[0].to_bytes();
  std::vector<std::uint8_t> v(bytes.begin(), bytes.end());
  CHECK_THROWS_AS(Share::from_bytes(std::span(v).first(v.size() - 1)), Error);
  v.push_back(0);
  CHECK_THROWS_AS(Share::from_bytes(v), Error);
  v.pop_back();
  v[0] = v[1] = v[2] = v[3] = 0;  // x = 0
  CHECK_THROWS_AS(Share::from_bytes(v), Error);
  v[0] = 0xff;  // x far above kShamirMaxHolders
  CHECK_THROWS_AS(Share::from_bytes(v), Error);
}

TEST_CASE("the Shamir field prime is 2^256 + 297 and the smallest prime above 2^256", "[crypto][shamir]") {
  const BnPtr p = shamir_prime();
  BnPtr expected(BN_new(), &BN_free), candidate(BN_new(), &BN_free);
  REQUIRE(BN_set_bit(expected.get(), 256) == 1);
  REQUIRE(BN_add_word(expected.get(), 297) == 1);
  CHECK(BN_cmp(p.get(), expected.get()) == 0);
  CHECK(BN_check_prime(p.get(), nullptr, nullptr) == 1);
  for (BN_ULONG k = 1; k < 297; ++k) {
    BN_zero(candidate.get());
    REQUIRE(BN_set_bit(candidate.get(), 256) == 1);
    REQUIRE(BN_add_word(candidate.get(), k) == 1);
    CAPTURE(k);
    REQUIRE(BN_check_prime(candidate.get(), nullptr, nullptr) == 0);
  }
}

}  // namespace sotto::crypto
