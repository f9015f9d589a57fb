// Privacy-loss-distribution (PLD) accounting for the Poisson-subsampled Gaussian mechanism — the tighter option
// beside rdp_accountant.h: the same (q, sigma, rounds) gives a smaller epsilon, so a budget buys more rounds.
//
// A PLD is the distribution of the privacy loss L = log(p(X)/q(X)) for X from the mechanism's output on one of
// two neighbouring datasets (p) against the other (q); delta(eps) = E_p[(1 - e^(eps - L))+] plus the mass where
// q = 0 (loss +infinity), and the PLD of composed mechanisms is the convolution of theirs (Koskela, Jälkö,
// Honkela 2020; Sommer, Meiser, Mohammadi 2019). One round of the subsampled Gaussian has two PLDs, one for each
// direction of adjacency:
//   remove: p = (1 - q) N(0, s^2) + q N(1, s^2), q = N(0, s^2);  add: the two swapped.
// Their delta(eps) has a closed form through the normal tail, so each round's PLD is built on a grid of losses
// i·interval by "connecting the dots" (Doroshenko, Ghazi, Kamath, Kumar, Manurangsi 2022): the masses are chosen
// so that delta(eps) is exact at every grid point and linear in e^eps between them, which — delta being convex in
// e^eps — bounds it from above everywhere: a pessimistic PLD, a true upper bound on the privacy spent. Rounds
// compose by FFT convolution (fft_convolution.h), squaring for many rounds; after each convolution the far tails
// below `tail_mass` are moved pessimistically (the low tail up to the lowest kept loss, the high tail to +infinity).
// The reported epsilon is the larger of the two directions'. The grid and the tails only ever raise it; what can
// lower it is FFT round-off alone, about 1e-16 of delta per grid point.
#pragma once

#include <cstdint>
#include <vector>

namespace sotto::dp {

class PrivacyLossDistribution {
 public:
  enum class Adjacency { kRemove, kAdd };

  // One round at sampling rate q in (0, 1] and noise multiplier sigma > 0, on a grid of `interval` > 0.
  static PrivacyLossDistribution subsampled_gaussian(double q, double sigma, Adjacency adjacency, double interval,
                                                     double tail_mass = 1e-15);

  // This PLD composed with itself `times` >= 1 times.
  PrivacyLossDistribution self_composed(std::uint64_t times) const;
  // The composition of this and `other` (same interval).
  PrivacyLossDistribution composed_with(const PrivacyLossDistribution& other) const;

  double delta_for_epsilon(double epsilon) const;
  // The smallest epsilon >= 0 with delta_for_epsilon(epsilon) <= delta; +infinity when the mass at +infinity alone
  // exceeds delta.
  double epsilon_for_delta(double delta) const;

  double interval() const { return interval_; }
  std::size_t size() const { return pmf_.size(); }
  double infinity_mass() const { return infinity_mass_; }

 private:
  PrivacyLossDistribution(double interval, double tail_mass, std::int64_t lowest, std::vector<double> pmf,
                          double infinity_mass);
  void truncate_tails();

  double interval_;
  double tail_mass_;
  std::int64_t lowest_;      // the loss of pmf_[0] is lowest_·interval_
  std::vector<double> pmf_;  // mass at each grid loss
  double infinity_mass_;
};

// The grid interval the accountant uses for `steps` rounds: 1e-4 up to 1,000 rounds, finer beyond (as
// 1e-4·sqrt(1000/steps)), so that the grid stays fine against the composed loss's spread.
double pld_interval_for(std::uint64_t steps);

// Epsilon after `steps` rounds at (q, sigma) for delta: the larger of the remove and add directions'.
double pld_subsampled_gaussian_epsilon(double q, double sigma, std::uint64_t steps, double delta);

// The smallest noise multiplier whose PLD epsilon after `steps` rounds at rate q is at most target_epsilon (to a
// relative 1e-4, rounding up so that the target is kept). Throws sotto::Error when none up to 10^3 does.
double pld_noise_multiplier_for(double q, std::uint64_t steps, double delta, double target_epsilon);

}  // namespace sotto::dp
