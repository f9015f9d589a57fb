#include "simulations/cohort_sampler.h"

#include <algorithm>
#include <random>
#include <unordered_set>

namespace sotto::sim {

std::vector<ClientIndex> sample_cohort(const SimConfig& c, std::uint64_t attempt) {
  std::mt19937_64 rng(mix64(c.seed ^ mix64(attempt ^ 0x636f686f7274ull)));
  std::vector<ClientIndex> cohort;
  const std::uint64_t n = c.sampled_clients();
  if (c.sampling == Sampling::kUniform) {
    // Floyd: for j in [n-k, n): pick t in [0, j]; take t unless already taken, else take j.
    std::unordered_set<ClientIndex> taken;
    const std::uint64_t k = std::min<std::uint64_t>(c.cohort_size, n);
    for (std::uint64_t j = n - k; j < n; ++j) {
      const ClientIndex t = std::uniform_int_distribution<std::uint64_t>(0, j)(rng);
      taken.insert(taken.count(t) ? j : t);
    }
    cohort.assign(taken.begin(), taken.end());
  } else {
    const double q = c.effective_sampling_rate();
    if (q >= 1.0) {
      cohort.resize(n);
      for (std::uint64_t i = 0; i < n; ++i) cohort[i] = i;
      return cohort;
    }
    std::geometric_distribution<std::uint64_t> gap(q);
    for (std::uint64_t i = gap(rng); i < n; i += 1 + gap(rng)) cohort.push_back(i);
  }
  std::sort(cohort.begin(), cohort.end());
  return cohort;
}

}  // namespace sotto::sim
