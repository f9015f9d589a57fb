// Rényi-DP accounting for the Poisson-subsampled Gaussian mechanism — DP-FedAvg's rounds (McMahan et al., ICLR
// 2018): each round every user joins with probability q, each update is clipped to C and the sum gets Gaussian
// noise of standard deviation sigma·C.
//
// One round's RDP at order alpha is log(A_alpha)/(alpha - 1) (Mironov, Talwar and Zhang 2019): at integer orders the
// exact binomial sum, at fractional orders their two-sided series with erfc tails and signed binomial
// coefficients, all in log space; q = 1 is the plain Gaussian, alpha/(2 sigma^2). Rounds compose by adding RDP. (epsilon, delta) comes from the conversion of
// Canonne, Kamath and Steinke 2020 (Prop. 12; Balle et al. 2020 Thm 21, as dp_accounting and Opacus use):
// epsilon = min over orders of rdp + log1p(-1/alpha) - log(delta·alpha)/(alpha - 1), with the KL bound for tiny RDP.
// Pure functions and a small value class; no I/O. Bad arguments throw sotto::Error naming them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace sotto::dp {

// dp_accounting's default grid: 1.1 to 10.9 by 0.1, 11 to 63, then 128, 256, 512, 1024.
std::vector<double> default_orders();

// RDP at `order` (> 1) of one step: sampling rate q in (0, 1], noise multiplier sigma > 0.
double subsampled_gaussian_rdp(double q, double sigma, double order);

struct Epsilon {
  double epsilon = 0;
  double order = 0;  // the order that gave it
};

// The smallest epsilon for `delta` in (0, 1) over the orders, from their RDP values (same length).
Epsilon epsilon_from_rdp(std::span<const double> orders, std::span<const double> rdp, double delta);

// The RDP of a run so far, at every order of its grid.
class RdpAccountant {
 public:
  explicit RdpAccountant(std::vector<double> orders = default_orders());

  // `steps` rounds of the subsampled Gaussian with these parameters.
  void compose(double q, double sigma, std::uint64_t steps);
  Epsilon epsilon(double delta) const;

  const std::vector<double>& orders() const { return orders_; }
  const std::vector<double>& rdp() const { return rdp_; }

 private:
  std::vector<double> orders_;
  std::vector<double> rdp_;
};

// Epsilon after `steps` rounds at (q, sigma), for delta.
Epsilon subsampled_gaussian_epsilon(double q, double sigma, std::uint64_t steps, double delta);

// The smallest noise multiplier whose epsilon after `steps` rounds at rate q is at most target_epsilon (to a
// relative 1e-6, rounding up so that the target is kept).
double noise_multiplier_for(double q, std::uint64_t steps, double delta, double target_epsilon);

}  // namespace sotto::dp
