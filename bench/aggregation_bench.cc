// Aggregation micro-benchmarks on the demo's model size (the Fashion-MNIST CNN, 80,396 parameters):
// FedAvg over a cohort of updates, and the wire work around it (encoding the global model into frames once per
// round, reassembling one client's streamed update). Run: build/bin/sotto_bench_aggregation.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>

#include "aggregator/fedavg.h"
#include "common/codec/model_frames.h"
#include "common/codec/model_stream.h"
#include "common/net/frame.h"

namespace {

using namespace sotto;

// Same tensor names and shapes as fashion_cnn (parameters then buffers).
model::ModelParameters cnn_like(std::uint32_t seed) {
  const std::vector<std::pair<std::string, std::vector<std::int64_t>>> layout = {
      {"conv1.weight", {16, 1, 5, 5}}, {"conv1.bias", {16}},   {"bn1.weight", {16}},         {"bn1.bias", {16}},
      {"conv2.weight", {32, 16, 5, 5}}, {"conv2.bias", {32}},  {"bn2.weight", {32}},         {"bn2.bias", {32}},
      {"fc1.weight", {128, 512}},       {"fc1.bias", {128}},   {"fc2.weight", {10, 128}},    {"fc2.bias", {10}},
      {"bn1.running_mean", {16}},       {"bn1.running_var", {16}}, {"bn2.running_mean", {32}}, {"bn2.running_var", {32}}};
  std::mt19937 gen(seed);  // benchmark data only
  std::normal_distribution<float> dist(0.0f, 0.01f);
  model::ModelParameters p;
  for (const auto& [name, shape] : layout) {
    model::Tensor t{name, model::DType::kFloat32, shape, {}};
    std::vector<float> v(model::element_count(shape));
    for (auto& x : v) x = dist(gen);
    t.data.resize(v.size() * 4);
    std::memcpy(t.data.data(), v.data(), t.data.size());
    p.add(std::move(t));
  }
  for (const char* name : {"bn1.num_batches_tracked", "bn2.num_batches_tracked"}) {
    model::Tensor t{name, model::DType::kInt64, {}, std::vector<std::byte>(8)};
    p.add(std::move(t));
  }
  return p;
}

void BM_FedAvgRound(benchmark::State& state) {
  const int clients = static_cast<int>(state.range(0));
  const auto global = cnn_like(0);
  std::vector<model::ModelParameters> updates;
  for (int i = 0; i < clients; ++i) updates.push_back(cnn_like(static_cast<std::uint32_t>(i + 1)));
  aggregator::FedAvg fedavg;
  for (auto _ : state) {
    fedavg.begin_round(global);
    for (const auto& u : updates) fedavg.accumulate(u, 7500);
    benchmark::DoNotOptimize(fedavg.finish_round(global));
  }
  state.counters["params"] = static_cast<double>(global.total_elements());
}
BENCHMARK(BM_FedAvgRound)->Arg(8)->Arg(32)->Unit(benchmark::kMillisecond);

void BM_EncodeGlobalModelFrames(benchmark::State& state) {
  const auto global = cnn_like(0);
  for (auto _ : state) benchmark::DoNotOptimize(codec::encode_chunk_frames(global, 1u << 20));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * global.total_bytes()));
}
BENCHMARK(BM_EncodeGlobalModelFrames)->Unit(benchmark::kMicrosecond);

void BM_DecodeStreamedUpdate(benchmark::State& state) {
  const auto update = cnn_like(1);
  const auto manifest = codec::make_manifest(update);
  const auto frames = codec::encode_chunk_frames(update, 1u << 20);
  for (auto _ : state) {
    codec::ModelAssembler assembler(manifest, update.total_bytes());
    for (const auto& f : frames) {
      v1::Envelope env;
      net::parse_envelope(std::string_view(*f).substr(net::kFrameHeaderBytes), env);
      assembler.accept(env.chunk());
    }
    benchmark::DoNotOptimize(assembler.take());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * update.total_bytes()));
}
BENCHMARK(BM_DecodeStreamedUpdate)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
