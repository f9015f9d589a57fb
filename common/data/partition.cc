#include "common/data/partition.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "common/util/error.h"

// Behaviour worth knowing:
//  * Shuffles use our own Fisher-Yates over std::mt19937_64 (whose output the standard fixes), so IID partitions
//    are identical across standard libraries. Dirichlet draws use std::gamma_distribution, whose algorithm is
//    implementation-defined: the same seed gives the same partition with the same standard library.
//  * partition_iid: client sizes differ by at most one; with fewer examples than clients some clients are empty.
//  * partition_dirichlet: a client may end up with no examples at all (likely for small alpha and many clients);
//    no rebalancing is done, so that the partition is the plain Dir(alpha) label skew the literature describes.
//    Classes are the distinct label values (any uint8), processed in ascending order.

namespace sotto::data {

namespace {

void check_clients(std::size_t num_clients) {
  if (num_clients == 0) throw Error("cannot partition a data set among 0 clients; num_clients must be at least 1");
}

// Uniform in [0, bound) without modulo bias, from the raw mt19937_64 output.
std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t bound) {
  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % bound;
  std::uint64_t x = rng();
  while (x >= limit) x = rng();
  return x % bound;
}

void shuffle(std::vector<std::uint32_t>& v, std::mt19937_64& rng) {
  for (std::size_t i = v.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(uniform_below(rng, i));
    std::swap(v[i - 1], v[j]);
  }
}

void sort_each(Partition& p) {
  for (auto& client : p) std::sort(client.begin(), client.end());
}

// Proportions over clients drawn from Dir(alpha): normalised Gamma(alpha, 1) draws. For tiny alpha every draw can
// underflow to zero; then one client, chosen uniformly, takes everything (the limit of Dir(alpha) as alpha -> 0).
std::vector<double> dirichlet(std::size_t k, double alpha, std::mt19937_64& rng) {
  std::gamma_distribution<double> gamma(alpha, 1.0);
  std::vector<double> p(k);
  double sum = 0;
  for (double& x : p) {
    x = gamma(rng);
    sum += x;
  }
  if (!(sum > 0) || !std::isfinite(sum)) {
    std::fill(p.begin(), p.end(), 0.0);
    p[static_cast<std::size_t>(uniform_below(rng, k))] = 1.0;
    return p;
  }
  for (double& x : p) x /= sum;
  return p;
}

// Deals `examples` to clients in contiguous runs whose lengths follow the cumulative proportions.
void split_by_proportions(const std::vector<std::uint32_t>& examples, const std::vector<double>& proportions,
                          Partition& out) {
  const std::size_t n = examples.size();
  double cumulative = 0;
  std::size_t begin = 0;
  for (std::size_t c = 0; c < proportions.size(); ++c) {
    cumulative += proportions[c];
    std::size_t end = c + 1 == proportions.size() ? n : static_cast<std::size_t>(std::llround(cumulative * n));
    end = std::clamp(end, begin, n);
    out[c].insert(out[c].end(), examples.begin() + static_cast<std::ptrdiff_t>(begin),
                  examples.begin() + static_cast<std::ptrdiff_t>(end));
    begin = end;
  }
}

void check_index_range(std::size_t num_examples) {
  if (num_examples > std::numeric_limits<std::uint32_t>::max()) {
    throw Error("cannot partition " + std::to_string(num_examples) + " examples: indices are 32-bit");
  }
}

}  // namespace

Partition partition_iid(std::size_t num_examples, std::size_t num_clients, std::uint64_t seed) {
  check_clients(num_clients);
  check_index_range(num_examples);
  std::vector<std::uint32_t> order(num_examples);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937_64 rng(seed);
  shuffle(order, rng);
  Partition p(num_clients);
  for (auto& client : p) client.reserve(num_examples / num_clients + 1);
  for (std::size_t i = 0; i < order.size(); ++i) p[i % num_clients].push_back(order[i]);
  sort_each(p);
  return p;
}

Partition partition_dirichlet(std::span<const std::uint8_t> labels, std::size_t num_clients, double alpha,
                              std::uint64_t seed) {
  check_clients(num_clients);
  if (!(alpha > 0) || !std::isfinite(alpha)) {
    throw Error("Dirichlet concentration alpha must be a positive finite number, got " + std::to_string(alpha) +
                " (small, e.g. 0.1, for strong label skew; large, e.g. 100, for nearly IID)");
  }
  check_index_range(labels.size());
  std::array<std::vector<std::uint32_t>, 256> by_class;
  for (std::size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(static_cast<std::uint32_t>(i));

  std::mt19937_64 rng(seed);
  Partition p(num_clients);
  for (auto& examples : by_class) {
    if (examples.empty()) continue;
    shuffle(examples, rng);
    split_by_proportions(examples, dirichlet(num_clients, alpha, rng), p);
  }
  sort_each(p);
  return p;
}

}  // namespace sotto::data
