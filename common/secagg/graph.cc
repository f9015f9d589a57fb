#include "common/secagg/graph.h"

#include <algorithm>
#include <string>

#include "common/crypto/hkdf.h"
#include "common/crypto/prg.h"
#include "common/util/error.h"

namespace sotto::secagg {

namespace {

void append_be32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}

// A deterministic stream of uniform integers below a bound, from AES-CTR words with rejection sampling.
class IndexStream {
 public:
  IndexStream(const GraphSeed& seed, std::uint32_t n, std::uint32_t k) {
    std::vector<std::uint8_t> info(kGraphInfo.begin(), kGraphInfo.end());
    append_be32(info, n);
    append_be32(info, k);
    key_ = crypto::hkdf_sha256(seed, {}, info, 32);
    refill(std::max<std::size_t>(64, 2 * static_cast<std::size_t>(n)));
  }

  // Uniform in [0, bound), bound >= 1.
  std::uint32_t below(std::uint32_t bound) {
    const std::uint64_t range = std::uint64_t{1} << 32;
    const std::uint64_t limit = range - range % bound;  // accept words < limit: a whole number of copies of bound
    for (;;) {
      if (next_ == words_.size()) refill(2 * words_.size());
      const std::uint32_t w = words_[next_++];
      if (w < limit) return static_cast<std::uint32_t>(w % bound);
    }
  }

 private:
  // The stream is the first `count` PRG words; a longer prefix extends it without changing what was read.
  void refill(std::size_t count) { words_ = crypto::expand_mask(key_, count); }

  crypto::SecretBytes key_;
  std::vector<std::uint32_t> words_;
  std::size_t next_ = 0;
};

}  // namespace

NeighbourGraph::NeighbourGraph(std::uint32_t n, std::uint32_t k, const GraphSeed& seed) : n_(n), k_(k) {
  if (n < 2) throw Error("secagg: a neighbour graph needs at least 2 nodes, got n = " + std::to_string(n));
  if (k < 1 || k > n - 1) {
    throw Error("secagg: the neighbour degree k must be in 1..n-1 = " + std::to_string(n - 1) + ", got " +
                std::to_string(k));
  }
  if (k % 2 != 0 && k != n - 1) {
    throw Error("secagg: the neighbour degree k must be even (a Harary graph) or n - 1, got k = " + std::to_string(k) +
                " for n = " + std::to_string(n));
  }
  const std::size_t row = k;
  adjacency_.resize(static_cast<std::size_t>(n) * row);
  if (k == n - 1) {
    for (std::uint32_t i = 0; i < n; ++i) {
      std::uint32_t* out = adjacency_.data() + i * row;
      for (std::uint32_t j = 0; j < n; ++j) {
        if (j != i) *out++ = j;
      }
    }
    return;
  }
  // Fisher–Yates: label[p] is the node at ring position p.
  std::vector<std::uint32_t> label(n);
  for (std::uint32_t p = 0; p < n; ++p) label[p] = p;
  IndexStream stream(seed, n, k);
  for (std::uint32_t i = n - 1; i >= 1; --i) std::swap(label[i], label[stream.below(i + 1)]);
  for (std::uint32_t p = 0; p < n; ++p) {
    std::uint32_t* out = adjacency_.data() + static_cast<std::size_t>(label[p]) * row;
    for (std::uint32_t d = 1; d <= k / 2; ++d) {
      *out++ = label[(p + d) % n];
      *out++ = label[(p + n - d) % n];
    }
    std::sort(out - row, out);
  }
}

std::span<const std::uint32_t> NeighbourGraph::neighbours(std::uint32_t i) const {
  if (i >= n_) throw Error("secagg: node " + std::to_string(i) + " is outside the graph of " + std::to_string(n_));
  return {adjacency_.data() + static_cast<std::size_t>(i) * k_, k_};
}

std::optional<std::uint32_t> NeighbourGraph::rank_of(std::uint32_t i, std::uint32_t j) const {
  if (i >= n_ || j >= n_) return std::nullopt;
  const auto row = neighbours(i);
  const auto it = std::lower_bound(row.begin(), row.end(), j);
  if (it == row.end() || *it != j) return std::nullopt;
  return static_cast<std::uint32_t>(it - row.begin());
}

bool NeighbourGraph::are_neighbours(std::uint32_t i, std::uint32_t j) const {
  return rank_of(i, j).has_value();
}

}  // namespace sotto::secagg
