// The DP noise samplers against their floor, and the accountant, in one run (BENCHMARKS.md, "Differential
// privacy"): RandomStream's 64-bit words per second (one word per sample is the floor an exact sampler is measured
// against), discrete Gaussian samples per second at several sigmas, discrete Laplace, and epsilon for 10,000 rounds
// with the RDP accountant; and a client's cost of the Distributed Discrete Gaussian (clip, rotate, round, noise,
// wrap) beside today's plain quantization of the same update, the Walsh-Hadamard transform beside one
// memory-bandwidth pass over the vector (a read-modify-write of every double), and DDG epsilon for 10,000 rounds.
#include <benchmark/benchmark.h>

#include "common/crypto/random_stream.h"
#include "common/dp/ddg_accounting.h"
#include "common/dp/ddg_encoding.h"
#include "common/dp/discrete_gaussian.h"
#include "common/dp/randomized_rotation.h"
#include "common/dp/rdp_accountant.h"
#include "common/secagg/quantizer.h"

#include <cmath>
#include <vector>

namespace {

using namespace sotto;

void BM_RandomStreamWords(benchmark::State& state) {
  crypto::RandomStream random;
  std::uint64_t sink = 0;
  for (auto _ : state) sink ^= random.next_word();
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RandomStreamWords);

void BM_DiscreteGaussian(benchmark::State& state) {
  crypto::RandomStream random;
  const dp::DiscreteGaussian gaussian(static_cast<double>(state.range(0)));
  std::int64_t sink = 0;
  for (auto _ : state) sink ^= gaussian.sample(random);
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DiscreteGaussian)->Arg(1)->Arg(100)->Arg(10'000)->Arg(1'000'000);

void BM_DiscreteLaplace(benchmark::State& state) {
  crypto::RandomStream random;
  std::int64_t sink = 0;
  for (auto _ : state) sink ^= dp::sample_discrete_laplace(static_cast<std::uint64_t>(state.range(0)), random);
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DiscreteLaplace)->Arg(1)->Arg(100);

void BM_RdpEpsilon10kRounds(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(dp::subsampled_gaussian_epsilon(0.01, 1.1, 10'000, 1e-5));
}
BENCHMARK(BM_RdpEpsilon10kRounds)->Unit(benchmark::kMillisecond);

// An update of m coordinates with L2 norm about 2 (clipped to 1).
std::vector<float> update_of(std::size_t m) {
  std::vector<float> u(m);
  for (std::size_t i = 0; i < m; ++i) u[i] = static_cast<float>(2.0 * std::sin(0.37 * static_cast<double>(i)) / std::sqrt(m / 2.0));
  return u;
}

void BM_PlainQuantize(benchmark::State& state) {
  const auto m = static_cast<std::size_t>(state.range(0));
  const auto update = update_of(m);
  const secagg::Quantizer quantizer({1.0, 100, 16});
  std::array<std::uint8_t, 32> seed{};
  for (auto _ : state) benchmark::DoNotOptimize(quantizer.encode_with_coin_seed(update, seed));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(m));
}
BENCHMARK(BM_PlainQuantize)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

void BM_DdgEncode(benchmark::State& state) {
  const auto m = static_cast<std::size_t>(state.range(0));
  const auto update = update_of(m);
  const auto p = dp::choose_ddg_parameters({16, 1.0, 1.0, 100, 95, m});
  crypto::RandomStream random;
  dp::RotationSeed seed{};
  for (auto _ : state) benchmark::DoNotOptimize(dp::ddg_encode(update, p, seed, random));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(m));
}
BENCHMARK(BM_DdgEncode)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

void BM_WalshHadamard(benchmark::State& state) {
  std::vector<double> v(static_cast<std::size_t>(state.range(0)), 0.5);
  for (auto _ : state) {
    dp::normalized_walsh_hadamard(v);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_WalshHadamard)->Arg(131'072)->Arg(1'048'576)->Unit(benchmark::kMillisecond);

// One memory-bandwidth pass: read and write every double once (the unit the transform's log2(m) passes are in).
void BM_MemoryPass(benchmark::State& state) {
  std::vector<double> v(static_cast<std::size_t>(state.range(0)), 0.5);
  for (auto _ : state) {
    for (double& x : v) x = x * 0.999 + 0.001;
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_MemoryPass)->Arg(131'072)->Arg(1'048'576)->Unit(benchmark::kMillisecond);

void BM_DdgEpsilon10kRounds(benchmark::State& state) {
  const auto p = dp::choose_ddg_parameters({16, 1.0, 1.0, 100, 95, 100'000});
  const auto orders = dp::default_orders();
  for (auto _ : state) {
    auto rdp = dp::ddg_rdp(p, 0.01, orders);
    for (double& r : rdp) r *= 10'000;
    benchmark::DoNotOptimize(dp::epsilon_from_rdp(orders, rdp, 1e-5));
  }
}
BENCHMARK(BM_DdgEpsilon10kRounds)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
