#include "simulations/distributed_training.h"

#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/codec/model_stream.h"
#include "common/codec/plan_codec.h"
#include "common/util/error.h"

namespace sotto::sim {

namespace {

// Work orders and results are flat byte strings: fixed-width little-endian integers (the ranks run the same
// binary on the same kind of machine) and length-prefixed blobs.
class Writer {
 public:
  template <typename T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  void put_blob(std::string_view bytes) {
    put<std::uint64_t>(bytes.size());
    out_.append(bytes);
  }
  // A model as its manifest and chunks, each length-prefixed.
  void put_model(const model::ModelParameters& params) {
    put_blob(codec::make_manifest(params).SerializeAsString());
    put<std::uint64_t>(codec::chunk_count(params, codec::kDefaultChunkBytes));
    codec::for_each_chunk(params, codec::kDefaultChunkBytes,
                          [&](v1::TensorChunk&& chunk) { put_blob(chunk.SerializeAsString()); });
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <typename T>
  T get() {
    T value;
    std::memcpy(&value, take(sizeof(T)).data(), sizeof(T));
    return value;
  }
  std::string_view get_blob() { return take(get<std::uint64_t>()); }
  model::ModelParameters get_model() {
    v1::ModelManifest manifest;
    const std::string_view m = get_blob();
    if (!manifest.ParseFromArray(m.data(), static_cast<int>(m.size()))) throw Error("work order: bad model manifest");
    codec::ModelAssembler assembler(manifest, manifest.total_bytes());
    const auto chunks = get<std::uint64_t>();
    for (std::uint64_t i = 0; i < chunks; ++i) {
      const std::string_view c = get_blob();
      v1::TensorChunk chunk;
      if (!chunk.ParseFromArray(c.data(), static_cast<int>(c.size()))) throw Error("work order: bad model chunk");
      if (auto err = assembler.accept(chunk)) throw Error("work order: " + *err);
    }
    if (!assembler.complete()) throw Error("work order: the model's chunks stop early");
    return assembler.take();
  }
 private:
  std::string_view take(std::size_t n) {
    if (n > in_.size()) throw Error("work order: truncated (wanted " + std::to_string(n) + " more bytes)");
    const std::string_view out = in_.substr(0, n);
    in_.remove_prefix(n);
    return out;
  }
  std::string_view in_;
};

enum class Order : std::uint8_t { kTrain = 1, kStop = 2 };

}  // namespace

DistributedTrainer::DistributedTrainer(const MpiCluster& cluster, TrainingPool& pool, const Population& population)
    : cluster_(cluster), pool_(pool), population_(population) {}

std::vector<TrainingJob> DistributedTrainer::my_share(const std::vector<ClientIndex>& clients) const {
  std::vector<TrainingJob> jobs;
  for (std::size_t p = static_cast<std::size_t>(cluster_.rank()); p < clients.size();
       p += static_cast<std::size_t>(cluster_.size())) {
    jobs.push_back({clients[p], population_.examples(clients[p]), population_.local_test(clients[p])});
  }
  return jobs;
}

void DistributedTrainer::train(const std::vector<ClientIndex>& clients, std::uint64_t round_id,
                               const model::ModelParameters& global, const ml::TrainingPlan& plan,
                               const TrainingPool::OutcomeSink& sink) {
  if (cluster_.size() == 1) {
    pool_.train(my_share(clients), round_id, global, plan, sink);
    return;
  }
  Writer order;
  order.put(Order::kTrain);
  order.put<std::uint64_t>(round_id);
  order.put_blob(codec::plan_to_proto(plan).SerializeAsString());
  order.put<std::uint64_t>(clients.size());
  for (ClientIndex c : clients) order.put<std::uint64_t>(c);
  order.put_model(global);
  std::string bytes = order.take();
  cluster_.broadcast(bytes);

  std::vector<TrainingOutcome> mine = pool_.train(my_share(clients), round_id, global, plan);
  const std::vector<std::string> results = cluster_.gather({});
  std::vector<TrainingOutcome> out(clients.size());
  for (std::size_t i = 0; i < mine.size(); ++i) out[i * static_cast<std::size_t>(cluster_.size())] = std::move(mine[i]);
  for (std::size_t rank = 1; rank < results.size(); ++rank) {
    Reader r(results[rank]);
    const auto count = r.get<std::uint64_t>();
    for (std::uint64_t i = 0; i < count; ++i) {
      const auto position = r.get<std::uint64_t>();
      if (position >= out.size() || position % static_cast<std::uint64_t>(cluster_.size()) != rank) {
        throw Error("rank " + std::to_string(rank) + " returned a result for job " + std::to_string(position) +
                    ", which is not one of its jobs");
      }
      TrainingOutcome& o = out[position];
      o.client = clients[position];
      if (r.get<std::uint8_t>()) {
        aggregator::ClientUpdate u;
        u.round_id = round_id;
        u.num_examples = r.get<std::uint64_t>();
        u.train_loss = r.get<double>();
        u.train_accuracy = r.get<double>();
        u.train_seconds = r.get<double>();
        u.delta = r.get_model();
        o.update = std::move(u);
      } else {
        o.error = std::string(r.get_blob());
      }
      o.compute_seconds = r.get<double>();
    }
  }
  for (auto& o : out) sink(std::move(o));
}

void DistributedTrainer::release_workers() {
  if (cluster_.size() == 1) return;
  Writer order;
  order.put(Order::kStop);
  std::string bytes = order.take();
  cluster_.broadcast(bytes);
}

void DistributedTrainer::serve() {
  for (;;) {
    std::string bytes;
    cluster_.broadcast(bytes);
    Reader order(bytes);
    if (order.get<Order>() == Order::kStop) return;
    const auto round_id = order.get<std::uint64_t>();
    v1::TrainingPlan plan_proto;
    const std::string_view plan_bytes = order.get_blob();
    if (!plan_proto.ParseFromArray(plan_bytes.data(), static_cast<int>(plan_bytes.size()))) {
      throw Error("work order: bad training plan");
    }
    const ml::TrainingPlan plan = codec::plan_from_proto(plan_proto);
    std::vector<ClientIndex> clients(order.get<std::uint64_t>());
    for (auto& c : clients) {
      c = order.get<std::uint64_t>();
      if (c >= population_.size()) throw Error("work order: client " + std::to_string(c) + " is not in the population");
    }
    const model::ModelParameters global = order.get_model();

    const std::vector<TrainingOutcome> mine = pool_.train(my_share(clients), round_id, global, plan);
    Writer result;
    result.put<std::uint64_t>(mine.size());
    for (std::size_t i = 0; i < mine.size(); ++i) {
      result.put<std::uint64_t>(static_cast<std::uint64_t>(cluster_.rank()) + i * static_cast<std::uint64_t>(cluster_.size()));
      const TrainingOutcome& o = mine[i];
      result.put<std::uint8_t>(o.update ? 1 : 0);
      if (o.update) {
        result.put<std::uint64_t>(o.update->num_examples);
        result.put<double>(o.update->train_loss);
        result.put<double>(o.update->train_accuracy);
        result.put<double>(o.update->train_seconds);
        result.put_model(o.update->delta);
      } else {
        result.put_blob(o.error);
      }
      result.put<double>(o.compute_seconds);
    }
    cluster_.gather(result.take());
  }
}

}  // namespace sotto::sim
