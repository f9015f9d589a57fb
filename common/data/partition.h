// Partitions: which examples of a data set each of N clients holds.
//
// IID: a seeded shuffle dealt round-robin, every example assigned exactly once. Dirichlet(alpha) label skew
// (Hsu et al. 2019): for every class, proportions over clients drawn from Dir(alpha) and that class's examples
// split accordingly; small alpha gives each client few classes, large alpha approaches IID. k classes per client
// (McMahan et al. 2017, the "pathological non-IID" split): examples sorted by label, cut into num_clients * k
// shards, k shards per client. Quantity skew: IID labels but client sizes drawn from a log-normal. Every
// partitioner assigns every example exactly once and is deterministic for a seed. (Statistical, not secret: a
// seeded std::mt19937_64 is right here; nothing in this file is a key, mask or noise.)
//
// PartitionReport: per client, its example count and per-class counts, writable as CSV, to record and plot how
// skewed a partition is.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace sotto::data {

using Partition = std::vector<std::vector<std::uint32_t>>;  // client -> example indices (ascending)

Partition partition_iid(std::size_t num_examples, std::size_t num_clients, std::uint64_t seed);
// Throws sotto::Error when alpha <= 0 or num_clients == 0.
Partition partition_dirichlet(std::span<const std::uint8_t> labels, std::size_t num_clients, double alpha,
                              std::uint64_t seed);

// k classes per client (McMahan et al. 2017): examples sorted by label (a seeded shuffle first, so the order
// within a class is random), cut into num_clients * classes_per_client contiguous shards whose sizes differ by at
// most one, and the shards dealt to clients k at a time in a seeded random order. A client holds at most k
// labels when every class's size is a multiple of the shard size (e.g. 10 balanced classes of 6000 and 100
// clients with k = 2: 200 shards of 300); a shard that straddles a class boundary adds a label, and two shards of
// the same class give a client fewer. Throws sotto::Error when num_clients or classes_per_client is 0.
Partition partition_k_classes(std::span<const std::uint8_t> labels, std::size_t num_clients,
                              std::size_t classes_per_client, std::uint64_t seed);

// Quantity skew: client c's share is proportional to w_c = exp(sigma * z_c), z_c ~ N(0, 1) (log-normal sizes;
// sigma = 0 gives equal shares, larger sigma more unequal ones); the examples are shuffled and dealt in
// contiguous runs of those sizes, so labels stay IID. When num_examples >= num_clients every client gets at
// least one example (one each first, the rest by share). Throws sotto::Error when sigma is negative or not
// finite, or num_clients is 0.
Partition partition_quantity_skew(std::size_t num_examples, std::size_t num_clients, double sigma, std::uint64_t seed);

struct PartitionReport {
  std::vector<std::uint8_t> classes;                   // the labels present in the data set, ascending
  std::vector<std::size_t> examples;                   // per client
  std::vector<std::vector<std::size_t>> class_counts;  // per client, per entry of `classes`

  // Labels with a non-zero count at client `client`.
  std::size_t distinct_classes(std::size_t client) const;
  // Header "client,examples,distinct_classes,class_<label>,...", then one row per client.
  std::string to_csv() const;
};

// Throws sotto::Error naming the client and index when a partition holds an index outside `labels`.
// A device's own test split (evaluation.local_fraction): round(fraction * size) of its examples, chosen by a
// shuffle seeded with `seed`, held out from training; both parts keep their examples' original order.
struct HeldOut {
  std::vector<std::uint32_t> train;
  std::vector<std::uint32_t> test;
};
HeldOut hold_out(const std::vector<std::uint32_t>& examples, double fraction, std::uint64_t seed);

PartitionReport make_partition_report(const Partition& partition, std::span<const std::uint8_t> labels);
// Writes make_partition_report(partition, labels).to_csv() to `path`; throws sotto::Error naming the path when the
// file cannot be written.
void write_partition_report(const std::filesystem::path& path, const Partition& partition,
                            std::span<const std::uint8_t> labels);

}  // namespace sotto::data
