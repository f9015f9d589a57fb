// Population: the registered virtual clients — for each, only an id and the examples it holds. No model, no
// optimizer state: a client costs a few bytes until it is sampled into a cohort, so a population can be far
// larger than the number of models that fit in memory.
//
// The training set is partitioned (common/data/partition.h) into min(population, training examples) shards, or
// data.num_shards of them; client c holds shard c mod #shards, so a population larger than the number of shards
// reuses them (each shard then serves several virtual clients: sampling the data with replacement).
// data.max_examples_per_client caps a shard with a seeded subsample. With evaluation.local_fraction, each shard's
// examples are split once, by the data seed, into those its clients train on and those they hold out.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/data/image_dataset.h"
#include "common/data/partition.h"
#include "simulations/sim_config.h"

namespace sotto::sim {

using ClientIndex = std::uint64_t;

class Population {
 public:
  // Partitions `train` per the config. Throws sotto::Error for a bad partition setting.
  Population(const SimConfig& config, const data::ImageDataset& train);

  std::uint64_t size() const { return size_; }
  // The examples the client trains on, and those it holds out (empty without evaluation.local_fraction).
  std::span<const std::uint32_t> examples(ClientIndex client) const;
  std::span<const std::uint32_t> local_test(ClientIndex client) const;
  // Every shard's examples, held-out ones included.
  const data::Partition& shards() const { return shards_; }
  // The id a virtual client presents to the coordinator.
  static std::string client_id(ClientIndex client);

 private:
  std::uint64_t size_;
  data::Partition shards_;
  data::Partition train_;      // per shard: the examples trained on (all of them without a local fraction)
  data::Partition held_out_;   // per shard: the local test split
};

}  // namespace sotto::sim
