#include "simulations/population.h"

#include <algorithm>
#include <cstdio>
#include <random>

#include "common/util/error.h"

namespace sotto::sim {

Population::Population(const SimConfig& c, const data::ImageDataset& train) : size_(c.population) {
  if (train.size() == 0) throw Error("the training set is empty: nothing to partition");
  const std::uint64_t wanted = c.num_shards > 0 ? c.num_shards : c.population;
  const std::size_t n_shards =
      static_cast<std::size_t>(std::min<std::uint64_t>(std::min<std::uint64_t>(wanted, c.population), train.size()));
  if (c.partition == "iid") {
    shards_ = data::partition_iid(train.size(), n_shards, c.data_seed);
  } else if (c.partition == "dirichlet") {
    shards_ = data::partition_dirichlet(train.labels, n_shards, c.alpha, c.data_seed);
  } else if (c.partition == "k_classes") {
    shards_ = data::partition_k_classes(train.labels, n_shards, c.classes_per_client, c.data_seed);
  } else if (c.partition == "quantity_skew") {
    shards_ = data::partition_quantity_skew(train.size(), n_shards, c.sigma, c.data_seed);
  } else {
    throw Error("data.partition '" + c.partition + "' is unknown");
  }
  if (c.max_examples_per_client > 0) {
    std::mt19937_64 rng(c.data_seed ^ 0x5350'4c49'5443'4150ull);
    for (auto& shard : shards_) {
      if (shard.size() <= c.max_examples_per_client) continue;
      std::shuffle(shard.begin(), shard.end(), rng);
      shard.resize(c.max_examples_per_client);
      std::sort(shard.begin(), shard.end());
      shard.shrink_to_fit();
    }
  }
  train_.resize(shards_.size());
  held_out_.resize(shards_.size());
  for (std::size_t s = 0; s < shards_.size(); ++s) {
    data::HeldOut split = data::hold_out(shards_[s], c.local_fraction, c.data_seed ^ (0x4c4f'4341'4cull + s));
    train_[s] = std::move(split.train);
    held_out_[s] = std::move(split.test);
  }
}

std::span<const std::uint32_t> Population::examples(ClientIndex client) const {
  if (client >= size_) throw Error("virtual client " + std::to_string(client) + " is outside the population");
  return train_[client % shards_.size()];
}

std::span<const std::uint32_t> Population::local_test(ClientIndex client) const {
  if (client >= size_) throw Error("virtual client " + std::to_string(client) + " is outside the population");
  return held_out_[client % shards_.size()];
}

std::string Population::client_id(ClientIndex client) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "sim-%06llu", static_cast<unsigned long long>(client));
  return buf;
}

}  // namespace sotto::sim
