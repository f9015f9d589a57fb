// The DP noise samplers against their floor, and the accountant, in one run (BENCHMARKS.md, "Differential
// privacy"): RandomStream's 64-bit words per second (one word per sample is the floor an exact sampler is measured
// against), discrete Gaussian samples per second at several sigmas, discrete Laplace, and epsilon for 10,000 rounds
// with the RDP accountant.
#include <benchmark/benchmark.h>

#include "common/crypto/random_stream.h"
#include "common/dp/discrete_gaussian.h"
#include "common/dp/rdp_accountant.h"

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

}  // namespace

BENCHMARK_MAIN();
