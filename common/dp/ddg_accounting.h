// Rényi DP of the Distributed Discrete Gaussian mechanism (Kairouz, Liu, Steinke, ICML 2021): each of h honest
// clients adds N_Z(0, sigma^2) to its integer vector (scaled units), so the sum carries the sum of h discrete
// Gaussians — which is not itself a discrete Gaussian. Their bound (Theorem 1 and Proposition 14) charges, at
// order alpha, with s2 = D2/(sqrt(h)·sigma), s1 = D1/(sqrt(h)·sigma), m the padded dimension and the correction
// tau = 10·sum_{k=1}^{h-1} exp(-2 pi^2 sigma^2 k/(k+1)):
//   rdp(alpha) = min( alpha/2·s2^2 + tau·m,  alpha/2·(s2^2 + 2 s1 tau + tau^2 m),  alpha/2·(s2 + sqrt(m) tau)^2 ).
// sigma is the variance parameter the exact sampler really uses (DiscreteGaussian::variance_parameter), not the
// requested one. With Poisson sampling at rate q < 1 the round's RDP is the general subsampled-mechanism bound of
// Zhu and Wang 2019 (Theorem 5), at integer orders only (fractional orders are charged +infinity, so they never
// give the epsilon), and never more than the unsampled bound.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "common/dp/ddg_parameters.h"

namespace sotto::dp {

// The sampler's sigma for a requested one (what the noise really has).
double effective_local_stddev(double requested);

// One round at order alpha > 1, every client summed (q = 1).
double ddg_rdp(const DdgParameters& p, double order);
// One round at each order, sampled at rate q in (0, 1].
std::vector<double> ddg_rdp(const DdgParameters& p, double q, std::span<const double> orders);

// The smallest noise multiplier z (to a relative 1e-6, rounded up) with which `rounds` rounds of the mechanism
// `parameters_for(z)` builds, each at sampling rate q, spend at most target_epsilon at `delta` over
// dp::default_orders(), on top of `spent_rdp` (empty: nothing spent). A z for which parameters_for throws
// sotto::Error (a noise share outside the sampler's range) counts as too little. Throws sotto::Error when no z up
// to 10^4 does.
double smallest_noise_multiplier(const std::function<DdgParameters(double)>& parameters_for, double q,
                                 std::uint64_t rounds, double delta, double target_epsilon,
                                 std::span<const double> spent_rdp = {});

// The same for the training mechanism that `settings` describe (its noise_multiplier ignored).
double ddg_noise_multiplier_for(DdgSettings settings, double q, std::uint64_t rounds, double delta,
                                double target_epsilon);

}  // namespace sotto::dp
