// Canary clients for an empirical epsilon (Andrew, Kairouz, Oh, Oprea, McMahan, Suriyakumar, "One-shot Empirical
// Privacy Estimation for Federated Learning", ICLR 2024): `count` extra virtual clients join the population and are
// sampled like any other, but instead of training they send clip_norm·u_c, a fixed random unit direction of their
// own, through the normal participant path (so it is clipped, encoded and noised like any update). `held_out`
// more directions are drawn and never sent. At the end, the cosine of the final model's change with each
// direction: an inserted canary's is shifted by whatever of it survived the noise; a held-out one's is the null.
// Gaussians fitted to the two sets (their own means, one pooled standard deviation) give the epsilon at delta of
// telling them apart — an estimate of what an observer of the final model can learn about one user, to set beside
// the accountant's upper bound.
//
// Directions are random signs over the floating-point coordinates (scaled to unit norm), from a RandomStream
// keyed by the run's canary seed: reproducible, and nearly orthogonal to each other and to anything else in
// high dimension. The estimate is a statistic (floating point), not a mechanism: nothing here is released noise.
#pragma once

#include <cstdint>
#include <vector>

#include "common/model/parameters.h"
#include "simulations/sim_config.h"

namespace sotto::sim {

struct CanaryCosines {
  std::vector<double> inserted;  // one per inserted canary, in index order
  std::vector<double> held_out;
};

struct CanaryEstimate {
  double inserted_mean = 0, inserted_stddev = 0, held_out_mean = 0, held_out_stddev = 0;
  double epsilon = 0;  // at `delta`, of telling the two fitted Gaussians apart; 0 when they overlap entirely
  double delta = 0;
};

// Canary k's direction (k < inserted + held out): unit norm over the model's floating-point coordinates.
std::vector<float> canary_direction(const CanaryOptions& options, std::uint64_t k, std::size_t dimension);

// The update canary k sends: clip_norm·u_k laid out like `like` (other tensors zero).
model::ModelParameters canary_update(const CanaryOptions& options, std::uint64_t k, double clip_norm,
                                     const model::ModelParameters& like);

// The cosines of final - initial with every direction.
CanaryCosines canary_cosines(const CanaryOptions& options, const model::ModelParameters& initial,
                             const model::ModelParameters& final_model);

// The smallest epsilon with which N(mean_a, sd_a^2) and N(mean_b, sd_b^2) are (epsilon, delta)-indistinguishable,
// both ways (by numerical integration; sd > 0).
double gaussian_pair_epsilon(double mean_a, double sd_a, double mean_b, double sd_b, double delta);

CanaryEstimate estimate_epsilon(const CanaryCosines& cosines, double delta);

}  // namespace sotto::sim
