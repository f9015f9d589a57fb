// Tests for the partitions (IID, Dirichlet, k classes per client, quantity skew): coverage, sizes, determinism and
// the amount of skew; and for partition reports.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
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

// ---- k classes per client, quantity skew, partition reports ---------------------------------------------------

namespace {

std::size_t distinct_labels(const std::vector<std::uint32_t>& client, const std::vector<std::uint8_t>& labels) {
  std::array<bool, 256> seen{};
  std::size_t n = 0;
  for (std::uint32_t i : client) {
    if (!seen[labels[i]]) ++n;
    seen[labels[i]] = true;
  }
  return n;
}

// Standard deviation over mean of the client sizes.
double size_cv(const Partition& p) {
  double mean = 0;
  for (const auto& c : p) mean += static_cast<double>(c.size());
  mean /= static_cast<double>(p.size());
  double var = 0;
  for (const auto& c : p) var += (static_cast<double>(c.size()) - mean) * (static_cast<double>(c.size()) - mean);
  var /= static_cast<double>(p.size());
  return std::sqrt(var) / mean;
}

}  // namespace

TEST_CASE("partition_k_classes gives every client at most k labels and assigns every example once",
          "[data][partition]") {
  using sotto::data::partition_k_classes;
  const auto labels = balanced_labels(600);  // 6000 examples, 600 per class
  struct Case {
    std::size_t clients, k;
  };
  // Each class size is a multiple of the shard size 6000 / (clients * k).
  for (const auto& [clients, k] : {Case{100, 2}, Case{10, 1}, Case{20, 3}, Case{50, 4}, Case{5, 10}}) {
    for (std::uint64_t seed : {1, 2}) {
      CAPTURE(clients, k, seed);
      const Partition p = partition_k_classes(labels, clients, k, seed);
      REQUIRE(p.size() == clients);
      require_exact_cover(p, labels.size());
      for (const auto& client : p) {
        CHECK(client.size() == labels.size() / clients);
        CHECK(distinct_labels(client, labels) <= k);
        CHECK(distinct_labels(client, labels) >= 1);
      }
    }
  }
  // k = 1 with 10 clients: every client holds exactly one whole class.
  const Partition one = partition_k_classes(labels, 10, 1, 5);
  for (const auto& client : one) CHECK(distinct_labels(client, labels) == 1);
  // Much more skewed than IID (where every client sees all 10 labels).
  const Partition two = partition_k_classes(labels, 100, 2, 3);
  CHECK(mean_max_class_fraction(two, labels) > 0.5);
  CHECK(mean_max_class_fraction(partition_iid(labels.size(), 100, 3), labels) < 0.4);
}

TEST_CASE("partition_k_classes covers uneven data and is deterministic per seed", "[data][partition]") {
  using sotto::data::partition_k_classes;
  const std::vector<std::uint8_t> odd = {0, 0, 0, 0, 200, 200, 5, 0, 5, 0, 7};
  for (std::size_t clients : {1, 3, 4, 11, 20}) {
    CAPTURE(clients);
    require_exact_cover(partition_k_classes(odd, clients, 2, 9), odd.size());
  }
  require_exact_cover(partition_k_classes({}, 4, 2, 9), 0);
  const auto labels = balanced_labels(100);
  const Partition a = partition_k_classes(labels, 20, 2, 11);
  REQUIRE(partition_k_classes(labels, 20, 2, 11) == a);
  REQUIRE(partition_k_classes(labels, 20, 2, 12) != a);
  REQUIRE_THROWS_WITH(partition_k_classes(labels, 20, 0, 1), Catch::Contains("classes_per_client"));
  REQUIRE_THROWS_AS(partition_k_classes(labels, 0, 2, 1), sotto::Error);
}

TEST_CASE("partition_quantity_skew assigns every example once with at least one per client", "[data][partition]") {
  using sotto::data::partition_quantity_skew;
  for (double sigma : {0.0, 0.5, 1.0, 2.0, 5.0}) {
    for (const auto& [n, k] : {std::pair<std::size_t, std::size_t>{6000, 100}, {1003, 7}, {50, 50}, {5, 8}, {0, 3}}) {
      CAPTURE(sigma, n, k);
      const Partition p = partition_quantity_skew(n, k, sigma, 42);
      REQUIRE(p.size() == k);
      require_exact_cover(p, n);
      if (n >= k) {
        for (const auto& client : p) CHECK(!client.empty());
      }
    }
  }
  // sigma = 0: equal shares, sizes differ by at most one.
  const Partition equal = partition_quantity_skew(1003, 7, 0.0, 1);
  const auto [smallest, largest] = std::minmax_element(
      equal.begin(), equal.end(), [](const auto& a, const auto& b) { return a.size() < b.size(); });
  CHECK(largest->size() - smallest->size() <= 1);
}

TEST_CASE("partition_quantity_skew sizes vary more as sigma grows and are deterministic per seed",
          "[data][partition]") {
  using sotto::data::partition_quantity_skew;
  for (std::uint64_t seed : {1, 2, 3}) {
    CAPTURE(seed);
    const double cv0 = size_cv(partition_quantity_skew(60000, 100, 0.0, seed));
    const double cv_half = size_cv(partition_quantity_skew(60000, 100, 0.5, seed));
    const double cv1 = size_cv(partition_quantity_skew(60000, 100, 1.0, seed));
    const double cv2 = size_cv(partition_quantity_skew(60000, 100, 2.0, seed));
    CAPTURE(cv0, cv_half, cv1, cv2);
    CHECK(cv0 < 0.01);
    // Log-normal: CV = sqrt(exp(sigma^2) - 1), i.e. 0.53 for sigma 0.5 and 1.31 for sigma 1.
    CHECK(cv_half > 0.3);
    CHECK(cv_half < 0.8);
    CHECK(cv1 > cv_half);
    CHECK(cv2 > cv1);
  }
  const Partition a = partition_quantity_skew(5000, 30, 1.0, 7);
  REQUIRE(partition_quantity_skew(5000, 30, 1.0, 7) == a);
  REQUIRE(partition_quantity_skew(5000, 30, 1.0, 8) != a);
  REQUIRE_THROWS_WITH(partition_quantity_skew(100, 10, -1.0, 1), Catch::Contains("sigma"));
  REQUIRE_THROWS_WITH(partition_quantity_skew(100, 10, std::numeric_limits<double>::infinity(), 1),
                      Catch::Contains("sigma"));
  REQUIRE_THROWS_AS(partition_quantity_skew(100, 0, 1.0, 1), sotto::Error);
}

TEST_CASE("partition reports count examples and classes per client and write them as CSV", "[data][partition]") {
  using sotto::data::make_partition_report;
  const std::vector<std::uint8_t> labels = {3, 3, 7, 0, 7, 7};
  const Partition p = {{0, 2, 4}, {}, {1, 3, 5}};
  const auto r = make_partition_report(p, labels);
  CHECK(r.classes == std::vector<std::uint8_t>{0, 3, 7});
  CHECK(r.examples == std::vector<std::size_t>{3, 0, 3});
  CHECK(r.class_counts[0] == std::vector<std::size_t>{0, 1, 2});
  CHECK(r.class_counts[1] == std::vector<std::size_t>{0, 0, 0});
  CHECK(r.class_counts[2] == std::vector<std::size_t>{1, 1, 1});
  CHECK(r.distinct_classes(0) == 2);
  const std::string expected =
      "client,examples,distinct_classes,class_0,class_3,class_7\n"
      "0,3,2,0,1,2\n"
      "1,0,0,0,0,0\n"
      "2,3,3,1,1,1\n";
  CHECK(r.to_csv() == expected);

  const auto path = std::filesystem::temp_directory_path() / ("sotto-partition-report-" +
                                                              std::to_string(std::random_device{}()) + ".csv");
  sotto::data::write_partition_report(path, p, labels);
  std::ifstream in(path, std::ios::binary);
  const std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(path);
  CHECK(written == expected);

  REQUIRE_THROWS_WITH(make_partition_report({{0, 6}}, labels), Catch::Contains("client 0") && Catch::Contains("6"));
  REQUIRE_THROWS_WITH(sotto::data::write_partition_report("/nonexistent-dir/report.csv", p, labels),
                      Catch::Contains("/nonexistent-dir/report.csv"));
}

TEST_CASE("hold_out splits a device's examples by its seed, both parts in their original order", "[data][personal]") {
  std::vector<std::uint32_t> shard(100);
  for (std::uint32_t i = 0; i < 100; ++i) shard[i] = 1000 + 3 * i;
  const auto a = sotto::data::hold_out(shard, 0.2, 7);
  CHECK(a.test.size() == 20);
  CHECK(a.train.size() == 80);
  CHECK(std::is_sorted(a.test.begin(), a.test.end()));
  CHECK(std::is_sorted(a.train.begin(), a.train.end()));
  std::vector<std::uint32_t> both = a.train;
  both.insert(both.end(), a.test.begin(), a.test.end());
  std::sort(both.begin(), both.end());
  CHECK(both == shard);
  CHECK(sotto::data::hold_out(shard, 0.2, 7).test == a.test);
  CHECK(sotto::data::hold_out(shard, 0.2, 8).test != a.test);
  CHECK(sotto::data::hold_out(shard, 0, 7).test.empty());
  CHECK_THROWS(sotto::data::hold_out(shard, 1.0, 7));
}
