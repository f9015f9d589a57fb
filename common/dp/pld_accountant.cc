#include "common/dp/pld_accountant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "common/dp/fft_convolution.h"
#include "common/dp/rdp_accountant.h"
#include "common/util/error.h"

namespace sotto::dp {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::size_t kMaxGridPoints = std::size_t{1} << 24;

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }
double normal_sf(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

// One round's delta(eps) and the mass below a loss, for one direction of adjacency (the header's p and q).
struct OneRound {
  double q, sigma;
  PrivacyLossDistribution::Adjacency adjacency;

  bool remove() const { return adjacency == PrivacyLossDistribution::Adjacency::kRemove; }

  // The x at which the loss equals eps: remove: L(x) = log(1 - q + q e^((2x - 1)/(2 s^2))), increasing in x;
  // add: L(x) = -log(1 - q + q e^((2x - 1)/(2 s^2))), decreasing. NaN where no x has that loss.
  double x_at(double eps) const {
    const double e = remove() ? eps : -eps;
    const double inner = std::expm1(e) + q;  // e^e - (1 - q)
    if (!(inner > 0)) return std::numeric_limits<double>::quiet_NaN();
    return sigma * sigma * (std::log(inner) - std::log(q)) + 0.5;
  }

  double delta(double eps) const {
    const double x = x_at(eps);
    if (remove()) {
      if (std::isnan(x)) return -std::expm1(eps);  // eps below every loss: 1 - e^eps
      // P(L > eps) - e^eps Q(L > eps), both over X > x.
      return q * normal_sf((x - 1) / sigma) - (std::expm1(eps) + q) * normal_sf(x / sigma);
    }
    if (std::isnan(x)) return 0.0;  // eps above every loss (-log(1 - q))
    // Over X < x: Phi(x/s) - e^eps ((1 - q) Phi(x/s) + q Phi((x - 1)/s)).
    return -std::expm1(eps + std::log1p(-q)) * normal_cdf(x / sigma) - std::exp(eps) * q * normal_cdf((x - 1) / sigma);
  }

  // P(L <= eps) under p.
  double mass_at_most(double eps) const {
    const double x = x_at(eps);
    if (remove()) {
      if (std::isnan(x)) return 0.0;
      return (1 - q) * normal_cdf(x / sigma) + q * normal_cdf((x - 1) / sigma);
    }
    if (std::isnan(x)) return 1.0;
    return normal_sf(x / sigma);
  }

  // The lowest loss, or -infinity.
  double lowest_loss() const { return remove() && q < 1 ? std::log1p(-q) : -kInf; }
};

// The first index from `start` on, going in `direction` (+1 or -1), at which `holds` is true, for a `holds` that
// stays true once true along that direction: doubling steps to bracket it, then bisection; nullopt when it is not
// true within kMaxGridPoints of the start.
template <typename F>
std::optional<std::int64_t> first_index_where(F&& holds, std::int64_t start, int direction) {
  if (holds(start)) return start;
  std::int64_t fails = start, step = 1, passes = start + direction;
  while (!holds(passes)) {
    fails = passes;
    step *= 2;
    if (step > static_cast<std::int64_t>(kMaxGridPoints)) return std::nullopt;
    passes = start + direction * step;
  }
  while (std::llabs(passes - fails) > 1) {
    const std::int64_t mid = fails + (passes - fails) / 2;
    (holds(mid) ? passes : fails) = mid;
  }
  return passes;
}

}  // namespace

PrivacyLossDistribution::PrivacyLossDistribution(double interval, double tail_mass, std::int64_t lowest,
                                                 std::vector<double> pmf, double infinity_mass)
    : interval_(interval), tail_mass_(tail_mass), lowest_(lowest), pmf_(std::move(pmf)),
      infinity_mass_(infinity_mass) {}

PrivacyLossDistribution PrivacyLossDistribution::subsampled_gaussian(double q, double sigma, Adjacency adjacency,
                                                                     double interval, double tail_mass) {
  if (!(q > 0 && q <= 1)) throw Error("PLD accountant: the sampling rate must be in (0, 1], got " + std::to_string(q));
  if (!(sigma > 0 && std::isfinite(sigma))) {
    throw Error("PLD accountant: the noise multiplier must be positive, got " + std::to_string(sigma));
  }
  if (!(interval > 0 && interval < 1)) throw Error("PLD accountant: the grid interval must be in (0, 1)");
  const OneRound round{q, sigma, adjacency};
  // The grid: from the lowest loss (or where the mass below is under tail_mass) to where delta is under tail_mass.
  const double lowest_loss = round.lowest_loss();
  const auto loss = [interval](std::int64_t i) { return static_cast<double>(i) * interval; };
  const auto lo = std::isfinite(lowest_loss)
                      ? std::optional(static_cast<std::int64_t>(std::floor(lowest_loss / interval)))
                      : first_index_where([&](std::int64_t i) { return round.mass_at_most(loss(i)) <= tail_mass; }, 0, -1);
  const auto hi = lo ? first_index_where([&](std::int64_t i) { return round.delta(loss(i)) <= tail_mass; },
                                         std::max<std::int64_t>(*lo, 0), 1)
                     : std::nullopt;
  const std::size_t k = lo && hi ? static_cast<std::size_t>(*hi - *lo) : kMaxGridPoints + 1;
  if (k > kMaxGridPoints) {
    throw Error("PLD accountant: one round's privacy loss spans more than " + std::to_string(kMaxGridPoints) +
                " grid points of " + std::to_string(interval) + " at noise multiplier " + std::to_string(sigma) +
                "; so small a noise multiplier spends a huge epsilon: use the rdp accountant");
  }
  std::vector<double> delta(k + 1);
  for (std::size_t j = 0; j <= k; ++j) delta[j] = round.delta(loss(*lo + static_cast<std::int64_t>(j)));
  // Connect the dots: A_j = (delta_j - delta_{j+1}) / (e^eps_{j+1} - e^eps_j) is minus the slope in e^eps; each
  // grid point's mass is e^eps_j times the slope's change there; the lowest takes what remains.
  std::vector<double> pmf(k + 1, 0.0);
  const double grow = std::expm1(interval);
  double above = 0;  // A_j of the segment above the current point
  for (std::size_t j = k; j-- > 0;) {
    const double eps_j = loss(*lo + static_cast<std::int64_t>(j));
    const double slope = (delta[j] - delta[j + 1]) / (std::exp(eps_j) * grow);  // A_j
    pmf[j + 1] = std::max(0.0, (slope - above) * std::exp(eps_j + interval));
    above = slope;
  }
  const double infinity_mass = delta[k];
  double rest = 1 - infinity_mass;
  for (std::size_t j = 1; j <= k; ++j) rest -= pmf[j];
  pmf[0] = std::max(0.0, rest);
  PrivacyLossDistribution out(interval, tail_mass, *lo, std::move(pmf), infinity_mass);
  out.truncate_tails();
  return out;
}

// Moves the low tail up onto the lowest kept loss and the high tail to +infinity, each at most tail_mass_; trims
// zeros at both ends.
void PrivacyLossDistribution::truncate_tails() {
  for (double& p : pmf_) p = std::max(0.0, p);
  std::size_t first = 0;
  double low = 0;
  while (first + 1 < pmf_.size() && low + pmf_[first] <= tail_mass_) low += pmf_[first++];
  std::size_t last = pmf_.size() - 1;
  double high = 0;
  while (last > first && high + pmf_[last] <= tail_mass_) high += pmf_[last--];
  std::vector<double> kept(pmf_.begin() + static_cast<std::ptrdiff_t>(first),
                           pmf_.begin() + static_cast<std::ptrdiff_t>(last) + 1);
  kept.front() += low;
  infinity_mass_ += high;
  lowest_ += static_cast<std::int64_t>(first);
  pmf_ = std::move(kept);
}

PrivacyLossDistribution PrivacyLossDistribution::composed_with(const PrivacyLossDistribution& other) const {
  if (other.interval_ != interval_) throw Error("PLD accountant: cannot compose PLDs on different grids");
  PrivacyLossDistribution out(interval_, std::max(tail_mass_, other.tail_mass_), lowest_ + other.lowest_,
                              fft_convolve(pmf_, other.pmf_),
                              1 - (1 - infinity_mass_) * (1 - other.infinity_mass_));
  out.truncate_tails();
  return out;
}

PrivacyLossDistribution PrivacyLossDistribution::self_composed(std::uint64_t times) const {
  if (times == 0) throw Error("PLD accountant: compose at least once");
  PrivacyLossDistribution power = *this;
  std::optional<PrivacyLossDistribution> result;
  for (std::uint64_t t = times;; t >>= 1) {
    if (t & 1) result = result ? result->composed_with(power) : power;
    if (t <= 1) break;
    power = power.composed_with(power);
  }
  return *result;
}

double PrivacyLossDistribution::delta_for_epsilon(double epsilon) const {
  double delta = infinity_mass_;
  for (std::size_t i = pmf_.size(); i-- > 0;) {
    const double loss = static_cast<double>(lowest_ + static_cast<std::int64_t>(i)) * interval_;
    if (loss <= epsilon) break;
    delta += pmf_[i] * -std::expm1(epsilon - loss);
  }
  return delta;
}

// Walking down the grid: on [loss_i, loss_{i+1}) delta(eps) = C1 - e^eps C2 with C1 = infinity mass + the masses
// above loss_i and C2 = their sum of p e^-loss; the first grid point whose delta exceeds the target brackets it.
double PrivacyLossDistribution::epsilon_for_delta(double delta) const {
  if (infinity_mass_ > delta) return kInf;
  double c1 = infinity_mass_, c2 = 0;
  for (std::size_t i = pmf_.size(); i-- > 0;) {
    const double loss = static_cast<double>(lowest_ + static_cast<std::int64_t>(i)) * interval_;
    if (c1 - std::exp(loss) * c2 > delta) return std::max(0.0, std::log((c1 - delta) / c2));
    c1 += pmf_[i];
    c2 += pmf_[i] * std::exp(-loss);
  }
  return 0.0;  // delta holds at every loss: at epsilon 0 too
}

double pld_interval_for(std::uint64_t steps) {
  return steps <= 1000 ? 1e-4 : 1e-4 * std::sqrt(1000.0 / static_cast<double>(steps));
}

double pld_subsampled_gaussian_epsilon(double q, double sigma, std::uint64_t steps, double delta) {
  if (steps == 0) throw Error("PLD accountant: steps must be at least 1");
  if (!(delta > 0 && delta < 1)) throw Error("PLD accountant: delta must be in (0, 1)");
  const double interval = pld_interval_for(steps);
  double epsilon = 0;
  for (auto adjacency : {PrivacyLossDistribution::Adjacency::kRemove, PrivacyLossDistribution::Adjacency::kAdd}) {
    const auto one = PrivacyLossDistribution::subsampled_gaussian(q, sigma, adjacency, interval);
    epsilon = std::max(epsilon, one.self_composed(steps).epsilon_for_delta(delta));
  }
  return epsilon;
}

// RDP's answer keeps the target under PLD too (PLD's epsilon is the smaller), so it brackets the search from above.
double pld_noise_multiplier_for(double q, std::uint64_t steps, double delta, double target_epsilon) {
  if (!(target_epsilon > 0)) throw Error("PLD accountant: the target epsilon must be positive");
  const auto meets = [&](double sigma) { return pld_subsampled_gaussian_epsilon(q, sigma, steps, delta) <= target_epsilon; };
  double hi = noise_multiplier_for(q, steps, delta, target_epsilon);
  double lo = hi / 2;
  while (meets(lo)) {
    hi = lo;
    lo /= 2;
    if (lo < hi / 64) throw Error("PLD accountant: the noise multiplier search does not converge");
  }
  while (hi / lo > 1 + 1e-4) {  // epsilon falls as sigma grows: keep hi on the side that meets the target
    const double mid = std::sqrt(lo * hi);
    (meets(mid) ? hi : lo) = mid;
  }
  return hi;
}

}  // namespace sotto::dp
