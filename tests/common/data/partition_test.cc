// Tests for IID and Dirichlet partitions: coverage, sizes, determinism and the amount of label skew.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/data/partition.h"
#include "common/util/error.h"

using sotto::data::Partition;
using sotto::data::partition_dirichlet;
using sotto::data::partition_iid;

namespace {

// Every index in [0, n) appears in exactly one client, each client's list ascending.
void require_exact_cover(const Partition& p, std::size_t n) {
  std::vector<int> seen(n, 0);
  for (const auto& client : p) {
    REQUIRE(std::is_sorted(client.begin(), client.end()));
    for (std::uint32_t i : client) {
      REQUIRE(i < n);
      ++seen[i];
    }
  }
  REQUIRE(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
}

// 10 classes, `per_class` examples each, interleaved 0,1,...,9,0,1,...
std::vector<std::uint8_t> balanced_labels(std::size_t per_class) {
  std::vector<std::uint8_t> labels(10 * per_class);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::uint8_t>(i % 10);
  return labels;
}

// Mean over non-empty clients of the fraction of the client's examples that belong to its most common class:
// 0.1 for perfectly balanced clients, 1.0 when every client holds a single class.
double mean_max_class_fraction(const Partition& p, const std::vector<std::uint8_t>& labels) {
  double sum = 0;
  int clients = 0;
  for (const auto& client : p) {
    if (client.empty()) continue;
    std::array<std::size_t, 10> counts{};
    for (std::uint32_t i : client) ++counts[labels[i]];
    sum += static_cast<double>(*std::max_element(counts.begin(), counts.end())) / static_cast<double>(client.size());
    ++clients;
  }
  return sum / clients;
}

}  // namespace

TEST_CASE("partition_iid assigns every example exactly once, in near-equal shares", "[data][partition]") {
  for (const auto& [n, k] : {std::pair<std::size_t, std::size_t>{1000, 10}, {1003, 7}, {5, 8}, {0, 3}, {60000, 1}}) {
    CAPTURE(n, k);
    const Partition p = partition_iid(n, k, 42);
    REQUIRE(p.size() == k);
    require_exact_cover(p, n);
    const auto [smallest, largest] = std::minmax_element(
        p.begin(), p.end(), [](const auto& a, const auto& b) { return a.size() < b.size(); });
    REQUIRE(largest->size() - smallest->size() <= 1);
  }
}

TEST_CASE("partition_iid is deterministic for a seed, different across seeds, and shuffled", "[data][partition]") {
  const Partition a = partition_iid(1000, 10, 7);
  REQUIRE(partition_iid(1000, 10, 7) == a);
  REQUIRE(partition_iid(1000, 10, 8) != a);
  // Not a contiguous or round-robin deal of the unshuffled indices.
  std::vector<std::uint32_t> first_block(100);
  for (std::uint32_t i = 0; i < 100; ++i) first_block[i] = i;
  REQUIRE(a[0] != first_block);
  REQUIRE_FALSE(std::all_of(a[0].begin(), a[0].end(), [](std::uint32_t i) { return i % 10 == 0; }));
}

TEST_CASE("partition_iid rejects zero clients", "[data][partition]") {
  REQUIRE_THROWS_AS(partition_iid(10, 0, 1), sotto::Error);
}

TEST_CASE("partition_dirichlet assigns every example exactly once", "[data][partition]") {
  const auto labels = balanced_labels(300);
  for (double alpha : {0.01, 0.1, 1.0, 100.0}) {
    for (std::size_t k : {1, 3, 10, 50}) {
      CAPTURE(alpha, k);
      const Partition p = partition_dirichlet(labels, k, alpha, 3);
      REQUIRE(p.size() == k);
      require_exact_cover(p, labels.size());
    }
  }
  // Uneven classes and labels outside 0..9 are fine too.
  const std::vector<std::uint8_t> odd = {0, 0, 0, 0, 200, 200, 5, 0, 5, 0};
  require_exact_cover(partition_dirichlet(odd, 4, 0.5, 9), odd.size());
  require_exact_cover(partition_dirichlet({}, 4, 0.5, 9), 0);
}

TEST_CASE("partition_dirichlet is deterministic for a seed and different across seeds", "[data][partition]") {
  const auto labels = balanced_labels(200);
  const Partition a = partition_dirichlet(labels, 10, 0.5, 11);
  REQUIRE(partition_dirichlet(labels, 10, 0.5, 11) == a);
  REQUIRE(partition_dirichlet(labels, 10, 0.5, 12) != a);
}

TEST_CASE("partition_dirichlet with small alpha is far more label-skewed than with large alpha", "[data][partition]") {
  const auto labels = balanced_labels(600);
  for (std::uint64_t seed : {1, 2, 3}) {
    CAPTURE(seed);
    const double skewed = mean_max_class_fraction(partition_dirichlet(labels, 10, 0.1, seed), labels);
    const double near_iid = mean_max_class_fraction(partition_dirichlet(labels, 10, 100.0, seed), labels);
    const double iid = mean_max_class_fraction(partition_iid(labels.size(), 10, seed), labels);
    CAPTURE(skewed, near_iid, iid);
    CHECK(skewed > 0.5);
    CHECK(near_iid < 0.2);
    CHECK(iid < 0.2);
    CHECK(skewed > near_iid + 0.3);
  }
}

TEST_CASE("partition_dirichlet rejects a non-positive alpha and zero clients", "[data][partition]") {
  const auto labels = balanced_labels(10);
  REQUIRE_THROWS_AS(partition_dirichlet(labels, 10, 0.0, 1), sotto::Error);
  REQUIRE_THROWS_AS(partition_dirichlet(labels, 10, -1.0, 1), sotto::Error);
  REQUIRE_THROWS_AS(partition_dirichlet(labels, 10, std::numeric_limits<double>::quiet_NaN(), 1), sotto::Error);
  REQUIRE_THROWS_WITH(partition_dirichlet(labels, 10, 0.0, 1), Catch::Contains("alpha"));
  REQUIRE_THROWS_AS(partition_dirichlet(labels, 0, 1.0, 1), sotto::Error);
}
