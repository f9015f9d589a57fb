#include "common/secagg/graph.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <set>

#include "common/util/error.h"

using sotto::secagg::GraphSeed;
using sotto::secagg::NeighbourGraph;

namespace {

GraphSeed seed_of(std::uint8_t b) {
  GraphSeed seed{};
  seed.fill(b);
  seed[0] = 0x5a;
  return seed;
}

void check_regular_and_symmetric(const NeighbourGraph& g) {
  for (std::uint32_t i = 0; i < g.size(); ++i) {
    const auto row = g.neighbours(i);
    REQUIRE(row.size() == g.degree());
    REQUIRE(std::is_sorted(row.begin(), row.end()));
    REQUIRE(std::adjacent_find(row.begin(), row.end()) == row.end());
    for (std::size_t r = 0; r < row.size(); ++r) {
      const std::uint32_t j = row[r];
      REQUIRE(j != i);
      REQUIRE(j < g.size());
      REQUIRE(g.are_neighbours(j, i));
      REQUIRE(g.rank_of(i, j) == r);
    }
    REQUIRE_FALSE(g.are_neighbours(i, i));
  }
}

}  // namespace

TEST_CASE("graph: every node has exactly k distinct neighbours and the relation is symmetric", "[secagg][graph]") {
  for (std::uint32_t n : {3u, 4u, 7u, 10u, 51u, 200u, 1000u}) {
    for (std::uint32_t k : {2u, 4u, 10u, 40u, n - 1}) {
      if (k > n - 1 || (k % 2 != 0 && k != n - 1)) continue;
      CAPTURE(n, k);
      check_regular_and_symmetric(NeighbourGraph(n, k, seed_of(static_cast<std::uint8_t>(n + k))));
    }
  }
}

TEST_CASE("graph: the same seed gives the same graph and different seeds give different graphs", "[secagg][graph]") {
  const NeighbourGraph a(100, 8, seed_of(1));
  const NeighbourGraph b(100, 8, seed_of(1));
  const NeighbourGraph c(100, 8, seed_of(2));
  bool differ = false;
  for (std::uint32_t i = 0; i < 100; ++i) {
    REQUIRE(std::equal(a.neighbours(i).begin(), a.neighbours(i).end(), b.neighbours(i).begin()));
    differ = differ || !std::equal(a.neighbours(i).begin(), a.neighbours(i).end(), c.neighbours(i).begin());
  }
  REQUIRE(differ);
}

TEST_CASE("graph: the relabelling is a random permutation and not the plain ring", "[secagg][graph]") {
  // On the unpermuted ring node 0's neighbours would be {1, 2, n-2, n-1}; over many seeds node 0 meets many nodes.
  std::set<std::uint32_t> met;
  int plain_ring = 0;
  for (std::uint8_t s = 0; s < 50; ++s) {
    const NeighbourGraph g(64, 4, seed_of(s));
    const auto row = g.neighbours(0);
    met.insert(row.begin(), row.end());
    plain_ring += (row[0] == 1 && row[1] == 2 && row[2] == 62 && row[3] == 63) ? 1 : 0;
  }
  REQUIRE(plain_ring == 0);
  REQUIRE(met.size() > 50);
}

TEST_CASE("graph: k = n - 1 is the complete graph for odd and even n", "[secagg][graph]") {
  for (std::uint32_t n : {3u, 4u, 9u, 10u}) {
    const NeighbourGraph g(n, n - 1, seed_of(7));
    for (std::uint32_t i = 0; i < n; ++i) {
      for (std::uint32_t j = 0; j < n; ++j) REQUIRE(g.are_neighbours(i, j) == (i != j));
    }
  }
}

TEST_CASE("graph: invalid sizes and degrees are refused", "[secagg][graph]") {
  REQUIRE_THROWS_AS(NeighbourGraph(1, 1, seed_of(0)), sotto::Error);
  REQUIRE_THROWS_AS(NeighbourGraph(10, 0, seed_of(0)), sotto::Error);
  REQUIRE_THROWS_AS(NeighbourGraph(10, 10, seed_of(0)), sotto::Error);
  REQUIRE_THROWS_AS(NeighbourGraph(10, 3, seed_of(0)), sotto::Error);  // odd and not n - 1
  REQUIRE_NOTHROW(NeighbourGraph(10, 9, seed_of(0)));
  const NeighbourGraph g(10, 4, seed_of(0));
  REQUIRE_THROWS_AS(g.neighbours(10), sotto::Error);
  REQUIRE_FALSE(g.are_neighbours(3, 10));
}
