// NeighbourGraph: who masks with whom in SecAgg+ (Bell et al., CCS 2020). Each client shares its secrets with, and
// exchanges pairwise masks with, only its k neighbours, so a round costs O(n·k) instead of O(n²).
//
// Construction: the Harary graph H(n, k) — n nodes on a ring, each joined to the k/2 nearest on either side — whose
// ring positions are relabelled by a uniformly random permutation of 0..n-1. The permutation is a Fisher–Yates
// shuffle driven by a deterministic stream: the words of crypto::expand_mask (AES-CTR) keyed by
// HKDF-SHA256(seed, info = kGraphInfo || n || k), each index drawn by rejection sampling (no modulo bias). The
// 32-byte seed is published by the server only after it holds every public key, so nobody can choose keys
// knowing their neighbours. k = n - 1 gives the complete graph (the original SecAgg) whatever n's parity.
//
// Invariants: every node has exactly k neighbours, none of them itself; the relation is symmetric; the same
// (n, k, seed) gives the same graph on every platform; neighbours(i) is sorted ascending.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace sotto::secagg {

inline constexpr std::size_t kGraphSeedBytes = 32;
inline constexpr std::string_view kGraphInfo = "sotto-secagg-graph-v1";

using GraphSeed = std::array<std::uint8_t, kGraphSeedBytes>;

class NeighbourGraph {
 public:
  // Throws sotto::Error unless 2 <= n, 1 <= k <= n - 1, and k is even or k == n - 1.
  NeighbourGraph(std::uint32_t n, std::uint32_t k, const GraphSeed& seed);

  std::uint32_t size() const { return n_; }
  std::uint32_t degree() const { return k_; }

  // The neighbours of node i, sorted ascending (exactly k of them). i must be < n.
  std::span<const std::uint32_t> neighbours(std::uint32_t i) const;
  bool are_neighbours(std::uint32_t i, std::uint32_t j) const;
  // j's rank in neighbours(i) (0..k-1), or nullopt when j is not a neighbour of i. SecAgg uses rank + 1 as the
  // x-coordinate of the Shamir share that i gives j.
  std::optional<std::uint32_t> rank_of(std::uint32_t i, std::uint32_t j) const;

 private:
  std::uint32_t n_;
  std::uint32_t k_;
  std::vector<std::uint32_t> adjacency_;  // n rows of k sorted labels
};

}  // namespace sotto::secagg
