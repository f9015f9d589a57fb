// Partitions: which examples of a data set each of N clients holds.
//
// IID: a seeded shuffle dealt round-robin, every example assigned exactly once. Dirichlet(alpha) label skew
// (Hsu et al. 2019): for every class, proportions over clients drawn from Dir(alpha) and that class's examples
// split accordingly; small alpha gives each client few classes, large alpha approaches IID. Every example is
// assigned exactly once. Deterministic for a seed. (Statistical, not secret: a seeded std::mt19937_64 is right
// here; nothing in this file is a key, mask or noise.)
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace sotto::data {

using Partition = std::vector<std::vector<std::uint32_t>>;  // client -> example indices (ascending)

Partition partition_iid(std::size_t num_examples, std::size_t num_clients, std::uint64_t seed);
// Throws sotto::Error when alpha <= 0 or num_clients == 0.
Partition partition_dirichlet(std::span<const std::uint8_t> labels, std::size_t num_clients, double alpha,
                              std::uint64_t seed);

}  // namespace sotto::data
