#include "common/data/partition.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <limits>
#include <numbers>
#include <numeric>
#include <random>
#include <sstream>

#include "common/util/error.h"

// Behaviour worth knowing:
//  * Shuffles use our own Fisher-Yates over std::mt19937_64 (whose output the standard fixes), so IID partitions
//    are identical across standard libraries. Dirichlet draws use std::gamma_distribution, whose algorithm is
//    implementation-defined: the same seed gives the same partition with the same standard library.
//  * partition_iid: client sizes differ by at most one; with fewer examples than clients some clients are empty.
//  * partition_dirichlet: a client may end up with no examples at all (likely for small alpha and many clients);
//    no rebalancing is done, so that the partition is the plain Dir(alpha) label skew the literature describes.
//    Classes are the distinct label values (any uint8), processed in ascending order.
//  * partition_k_classes: with more shards than examples some shards (and so some clients) are empty.
//  * partition_quantity_skew: normal draws are our own Box-Muller over the raw mt19937_64 output, so the sizes
//    are the same across standard libraries (up to the last bit of libm's log/cos/exp). Sizes come from the
//    cumulative shares rounded to whole examples, like the Dirichlet split.

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

// Uniform in (0, 1), 53 random bits, never 0 or 1.
double uniform_open01(std::mt19937_64& rng) {
  return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53;
}

// Standard normal by Box-Muller (one of the pair is used).
double standard_normal(std::mt19937_64& rng) {
  const double u1 = uniform_open01(rng);
  const double u2 = uniform_open01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
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

namespace sotto::data {

Partition partition_k_classes(std::span<const std::uint8_t> labels, std::size_t num_clients,
                              std::size_t classes_per_client, std::uint64_t seed) {
  check_clients(num_clients);
  if (classes_per_client == 0) {
    throw Error("classes_per_client must be at least 1 (each client gets that many label-sorted shards), got 0");
  }
  check_index_range(labels.size());
  constexpr std::size_t kMaxShards = std::numeric_limits<std::uint32_t>::max();
  if (num_clients > kMaxShards / classes_per_client) {
    throw Error("too many shards: " + std::to_string(num_clients) + " clients x " + std::to_string(classes_per_client) +
                " classes per client exceeds " + std::to_string(kMaxShards));
  }
  const std::size_t n = labels.size();
  const std::size_t num_shards = num_clients * classes_per_client;

  std::mt19937_64 rng(seed);
  std::vector<std::uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  shuffle(order, rng);
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return labels[a] < labels[b]; });

  std::vector<std::uint32_t> shards(num_shards);
  std::iota(shards.begin(), shards.end(), 0u);
  shuffle(shards, rng);

  // Shard s is order[s*n/S, (s+1)*n/S): both products fit in 64 bits (n and S are at most 2^32 - 1).
  auto shard_begin = [&](std::uint64_t s) { return static_cast<std::size_t>(s * n / num_shards); };
  Partition p(num_clients);
  for (std::size_t c = 0; c < num_clients; ++c) {
    for (std::size_t j = 0; j < classes_per_client; ++j) {
      const std::uint64_t s = shards[c * classes_per_client + j];
      p[c].insert(p[c].end(), order.begin() + static_cast<std::ptrdiff_t>(shard_begin(s)),
                  order.begin() + static_cast<std::ptrdiff_t>(shard_begin(s + 1)));
    }
  }
  sort_each(p);
  return p;
}

Partition partition_quantity_skew(std::size_t num_examples, std::size_t num_clients, double sigma, std::uint64_t seed) {
  check_clients(num_clients);
  if (!(sigma >= 0) || !std::isfinite(sigma)) {
    throw Error("quantity-skew sigma must be a finite number >= 0, got " + std::to_string(sigma) +
                " (0 for equal client sizes; 1 or 2 for strongly unequal ones)");
  }
  check_index_range(num_examples);
  std::mt19937_64 rng(seed);

  // Shares: log-normal weights, normalised. Work in log space relative to the largest draw so that exp() cannot
  // overflow for a large sigma.
  std::vector<double> log_weight(num_clients);
  for (double& x : log_weight) x = sigma * standard_normal(rng);
  const double top = *std::max_element(log_weight.begin(), log_weight.end());
  std::vector<double> share(num_clients);
  double total = 0;
  for (std::size_t c = 0; c < num_clients; ++c) total += share[c] = std::exp(log_weight[c] - top);
  for (double& x : share) x /= total;

  // One example each first (when there are enough), the rest by cumulative share.
  const std::size_t floor_each = num_examples >= num_clients ? 1 : 0;
  const std::size_t rest = num_examples - floor_each * num_clients;
  std::vector<std::size_t> sizes(num_clients, floor_each);
  double cumulative = 0;
  std::size_t given = 0;
  for (std::size_t c = 0; c < num_clients; ++c) {
    cumulative += share[c];
    std::size_t end =
        c + 1 == num_clients ? rest : static_cast<std::size_t>(std::llround(cumulative * static_cast<double>(rest)));
    end = std::clamp(end, given, rest);
    sizes[c] += end - given;
    given = end;
  }

  std::vector<std::uint32_t> order(num_examples);
  std::iota(order.begin(), order.end(), 0u);
  shuffle(order, rng);
  Partition p(num_clients);
  std::size_t begin = 0;
  for (std::size_t c = 0; c < num_clients; ++c) {
    p[c].assign(order.begin() + static_cast<std::ptrdiff_t>(begin),
                order.begin() + static_cast<std::ptrdiff_t>(begin + sizes[c]));
    begin += sizes[c];
  }
  sort_each(p);
  return p;
}

std::size_t PartitionReport::distinct_classes(std::size_t client) const {
  const auto& counts = class_counts.at(client);
  return static_cast<std::size_t>(std::count_if(counts.begin(), counts.end(), [](std::size_t x) { return x > 0; }));
}

std::string PartitionReport::to_csv() const {
  std::ostringstream out;
  out << "client,examples,distinct_classes";
  for (std::uint8_t label : classes) out << ",class_" << static_cast<unsigned>(label);
  out << '\n';
  for (std::size_t c = 0; c < examples.size(); ++c) {
    out << c << ',' << examples[c] << ',' << distinct_classes(c);
    for (std::size_t count : class_counts[c]) out << ',' << count;
    out << '\n';
  }
  return out.str();
}

PartitionReport make_partition_report(const Partition& partition, std::span<const std::uint8_t> labels) {
  std::array<bool, 256> present{};
  for (std::uint8_t label : labels) present[label] = true;
  std::array<std::size_t, 256> column{};
  PartitionReport r;
  for (std::size_t label = 0; label < present.size(); ++label) {
    if (!present[label]) continue;
    column[label] = r.classes.size();
    r.classes.push_back(static_cast<std::uint8_t>(label));
  }
  r.examples.resize(partition.size());
  r.class_counts.assign(partition.size(), std::vector<std::size_t>(r.classes.size(), 0));
  for (std::size_t c = 0; c < partition.size(); ++c) {
    r.examples[c] = partition[c].size();
    for (std::uint32_t i : partition[c]) {
      if (i >= labels.size()) {
        throw Error("partition report: client " + std::to_string(c) + " holds example " + std::to_string(i) +
                    ", but the data set has only " + std::to_string(labels.size()) + " labels");
      }
      ++r.class_counts[c][column[labels[i]]];
    }
  }
  return r;
}

void write_partition_report(const std::filesystem::path& path, const Partition& partition,
                            std::span<const std::uint8_t> labels) {
  const std::string csv = make_partition_report(partition, labels).to_csv();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error("cannot open partition report '" + path.string() + "' for writing");
  out.write(csv.data(), static_cast<std::streamsize>(csv.size()));
  out.close();
  if (!out) throw Error("cannot write partition report '" + path.string() + "'");
}

HeldOut hold_out(const std::vector<std::uint32_t>& examples, double fraction, std::uint64_t seed) {
  if (!(fraction >= 0 && fraction < 1)) throw Error("held-out fraction must be in [0, 1)");
  std::vector<std::uint32_t> positions(examples.size());
  for (std::uint32_t i = 0; i < positions.size(); ++i) positions[i] = i;
  std::mt19937_64 rng(seed);
  shuffle(positions, rng);
  const auto held = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(examples.size())));
  std::vector<bool> is_test(examples.size(), false);
  for (std::size_t k = 0; k < held; ++k) is_test[positions[k]] = true;
  HeldOut out;
  for (std::size_t i = 0; i < examples.size(); ++i) (is_test[i] ? out.test : out.train).push_back(examples[i]);
  return out;
}

}  // namespace sotto::data
