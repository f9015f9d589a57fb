// Adaptive clipping (Andrew, Thakkar, McMahan, Ramaswamy, NeurIPS 2021): the clip norm C follows a target quantile
// gamma of the cohort's update norms. Each client reports one bit b = 1[||update|| <= C]; the round's noised sum of
// the bits gives the fraction left unclipped, b_bar, and the next round clips to C·exp(-eta·(b_bar - gamma)).
//
// Here the bit travels inside the update's own private vector, as one more coordinate of weight w: a client sends
// [clip_C(update), w·(b - 1/2)] under the round's mechanism with clip norm sqrt(C^2 + w^2/4), so its noise (and its
// accounting) covers the bit too, and the noise on the sum of bits is sigma_b = z·sqrt(C^2 + w^2/4)/w — the
// paper's split of one noise multiplier between update and count (its Section 3), as a single mechanism. The
// weight follows from the count noise asked for: w = z·C/sqrt(sigma_b^2 - z^2/4), which needs sigma_b > z/2.
// Here z is the multiplier of the noise the sum really carries: in distributed mode every client adds a share
// of a noise the accountant counts for the honest survivors alone, so the sum carries sqrt(n/h) times more than
// z_accounted. The paper's default count noise is the expected cohort over 20 (b_bar's standard deviation 0.05).
#pragma once

#include <cstdint>
#include <vector>

namespace sotto::dp {

struct AdaptiveClipping {
  bool enabled = false;
  double target_quantile = 0.5;  // gamma in (0, 1): the fraction of updates to leave unclipped
  double learning_rate = 0.2;    // eta > 0 of the geometric update
  double count_stddev = 0;       // sigma_b, in bits: the noise on the sum of the cohort's bits; 0: clients / 20
};

// sigma_b for a round of `clients`: the configured one, or clients / 20.
double count_stddev_for(const AdaptiveClipping& options, std::uint32_t clients);

// The count coordinate's weight w for clip norm C, noise multiplier z and count noise sigma_b (throws sotto::Error
// when sigma_b <= z/2: the bit's own noise cannot be that small at that noise multiplier).
double clipped_count_weight(double clip_norm, double noise_multiplier, double count_stddev);

// The clip norm of [update, count coordinate]: sqrt(C^2 + w^2/4).
double joint_clip_norm(double clip_norm, double count_weight);

// The coordinate a client appends: +w/2 if its update's norm is at most C (left unclipped), else -w/2.
float clipped_count_entry(double update_norm, double clip_norm, double count_weight);

// What a client encodes: its update clipped to C, with its clipped-count coordinate appended (`update_norm`: the
// update's L2 norm before clipping).
std::vector<float> with_clipped_count(std::vector<float> update, double update_norm, double clip_norm,
                                      double count_weight);

// b_bar from the decoded sum of the count coordinates over `survivors` clients, within [0, 1].
double unclipped_fraction(double count_coordinate_sum, double count_weight, std::uint32_t survivors);

// C·exp(-eta·(b_bar - gamma)), never above `ceiling` (> 0; the smallest max_clip_norm the cohort announced).
double next_clip_norm(double clip_norm, double unclipped_fraction, const AdaptiveClipping& options, double ceiling);

}  // namespace sotto::dp
