// CohortSampler: which virtual clients take part in a round.
//
// "uniform": exactly cohort_size distinct clients, uniformly without replacement (Floyd's algorithm: O(cohort)
// time and memory, whatever the population). "poisson": every client independently with probability q (drawn as
// geometric gaps: O(expected cohort)), so the cohort size varies and may be 0. Deterministic for (seed, round);
// the cohort comes back sorted by client index.
#pragma once

#include <cstdint>
#include <vector>

#include "common/util/seed_mix.h"
#include "simulations/population.h"
#include "simulations/sim_config.h"

namespace sotto::sim {

using util::mix64;  // seeds (seed ^ round, seed ^ client) spread into independent-looking streams

std::vector<ClientIndex> sample_cohort(const SimConfig& config, std::uint64_t attempt);

}  // namespace sotto::sim
