// Crypto micro-benchmarks for secure aggregation. The mask PRG (AES-128-CTR keystream added into a uint32 vector)
// is compared with OpenSSL's raw AES-128-CTR keystream over the same 64 KiB blocks: the gap is the cost of the add
// loop and the per-seed HKDF and key schedule. `openssl speed -evp aes-128-ctr` is the outside reference.
// Shamir split/reconstruct timings for cohort sizes SecAgg uses are here too.
// Run: build/bin/sotto_bench_prg.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <cstdint>
#include <vector>

#include "common/crypto/prg.h"
#include "common/crypto/random.h"
#include "common/crypto/shamir.h"

namespace {

using namespace sotto::crypto;

// Words: 80,396 is the demo CNN; 1 Mi and 16 Mi words are 4 MiB and 64 MiB updates.
void BM_AddMask(benchmark::State& state) {
  std::vector<std::uint32_t> acc(static_cast<std::size_t>(state.range(0)), 0);
  const auto seed = random_secret<32>();
  for (auto _ : state) {
    add_mask(acc, seed, MaskSign::kAdd);
    benchmark::DoNotOptimize(acc.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 4);
}
BENCHMARK(BM_AddMask)->Arg(4)->Arg(80396)->Arg(1 << 20)->Arg(1 << 24);

// Several masks in one add_masks call, as the server unmasks and the client masks: args {words, masks}. Bytes are
// keystream bytes (words x masks x 4), comparable with the raw keystream's.
void BM_AddMasks(benchmark::State& state) {
  std::vector<std::uint32_t> acc(static_cast<std::size_t>(state.range(0)), 0);
  std::vector<SecretArray<32>> seeds;
  for (std::int64_t s = 0; s < state.range(1); ++s) seeds.push_back(random_secret<32>());
  std::vector<MaskTerm> terms;
  for (const auto& seed : seeds) terms.push_back({seed, MaskSign::kSubtract});
  for (auto _ : state) {
    add_masks(acc, terms);
    benchmark::DoNotOptimize(acc.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * state.range(1) * 4);
}
BENCHMARK(BM_AddMasks)->Args({1 << 20, 37})->Args({1 << 24, 8});

// The same amount of raw keystream straight from EVP, one context, 64 KiB per call: the ceiling for add_mask.
void BM_RawAes128CtrKeystream(benchmark::State& state) {
  const std::size_t bytes = static_cast<std::size_t>(state.range(0)) * 4;
  const auto key = random_secret<32>();
  std::vector<std::uint8_t> zeros(65536, 0), out(65536);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-128-CTR", nullptr);
  for (auto _ : state) {
    EVP_EncryptInit_ex2(ctx, cipher, key.data(), key.data() + 16, nullptr);
    for (std::size_t done = 0; done < bytes; done += out.size()) {
      int length = 0;
      const std::size_t n = std::min(out.size(), bytes - done);
      EVP_EncryptUpdate(ctx, out.data(), &length, zeros.data(), static_cast<int>(n));
    }
    benchmark::DoNotOptimize(out.data());
  }
  EVP_CIPHER_free(cipher);
  EVP_CIPHER_CTX_free(ctx);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 4);
}
BENCHMARK(BM_RawAes128CtrKeystream)->Arg(80396)->Arg(1 << 20)->Arg(1 << 24);

// Shamir: args are {t, n} for split and t (reconstructing from t shares) for reconstruct.
void BM_ShamirSplit(benchmark::State& state) {
  const auto secret = random_secret<32>();
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        split(secret, static_cast<std::uint32_t>(state.range(0)), static_cast<std::uint32_t>(state.range(1))));
  }
}
BENCHMARK(BM_ShamirSplit)->Args({5, 10000})->Args({500, 1000})->Args({10, 200})->Unit(benchmark::kMillisecond);

void BM_ShamirReconstruct(benchmark::State& state) {
  const auto t = static_cast<std::uint32_t>(state.range(0));
  const auto secret = random_secret<32>();
  const auto shares = split(secret, t, t);
  for (auto _ : state) benchmark::DoNotOptimize(reconstruct(shares, t));
}
BENCHMARK(BM_ShamirReconstruct)->Arg(5)->Arg(500)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
