#include "aggregator/privacy_budget.h"

#include <cmath>

#include "common/crypto/random.h"
#include "common/dp/adaptive_clipping.h"
#include "common/dp/ddg_accounting.h"
#include "common/util/error.h"
#include "common/util/short_number.h"

namespace sotto::aggregator {

PrivacyBudget::PrivacyBudget(PrivacyOptions options, std::uint32_t bits, double corruption_rate, double clip_norm,
                             std::vector<double> spent_rdp, std::optional<dp::ContributionBound> integer_sum)
    : options_(options),
      bits_(bits),
      corruption_rate_(corruption_rate),
      clip_norm_(clip_norm),
      orders_(dp::default_orders()),
      spent_(std::move(spent_rdp)),
      integer_sum_(integer_sum) {
  if (spent_.empty()) spent_.assign(orders_.size(), 0.0);
  released_ = spent_;  // a restarted daemon: q = 1, the two are the same
  if (!(options_.sampling_rate > 0 && options_.sampling_rate <= 1)) {
    throw Error("privacy: the sampling rate must be in (0, 1]");
  }
  if (spent_.size() != orders_.size()) {
    throw Error("privacy: the recorded RDP has " + std::to_string(spent_.size()) + " orders, expected " +
                std::to_string(orders_.size()));
  }
  if (enabled() && !(options_.noise_multiplier > 0) && !(options_.target_epsilon > 0)) {
    throw Error("privacy: set privacy.noise_multiplier, or privacy.target_epsilon to have it computed");
  }
}

void PrivacyBudget::fit_noise_to_budget(std::uint64_t rounds, std::uint32_t clients, std::uint64_t dimension,
                                        std::uint32_t histogram_bins) {
  if (!enabled() || options_.noise_multiplier > 0) return;
  if (spent_released().epsilon >= options_.target_epsilon) {
    options_.noise_multiplier = 1;  // any: plan() refuses the first round as over budget
    return;
  }
  const std::uint32_t honest = std::max<std::uint32_t>(honest_survivors(clients), 1);
  try {
    // The histograms' charge is fixed by their own z: the rounds' share of it is spent before the update's is fitted
    // (RDP adds at q = 1, the only rate histogram rounds run at).
    std::vector<double> before = released_;
    if (histogram_bins > 0) {
      const auto rdp = dp::ddg_rdp(histogram_parameters(clients, honest, histogram_bins), 1.0, orders_);
      for (std::size_t i = 0; i < before.size(); ++i) before[i] += static_cast<double>(rounds) * rdp[i];
    }
    options_.noise_multiplier = dp::smallest_noise_multiplier(
        [&](double z) { return parameters(z, clients, honest, dimension, count_weight(z, clients, honest)); },
        amplifying_rate(), rounds,
        options_.delta, options_.target_epsilon, before);  // earlier runs' spending included
  } catch (const Error& e) {
    throw Error(std::string("privacy.target_epsilon: ") + e.what());
  }
}

dp::DdgParameters PrivacyBudget::parameters(double z, std::uint32_t clients, std::uint32_t honest,
                                            std::uint64_t dimension, double weight) const {
  if (integer_sum_) {
    return dp::choose_integer_sum_parameters({*integer_sum_, dimension, z, clients, honest, bits_,
                                              options_.stddevs_in_range});
  }
  if (weight > 0) {
    return dp::choose_ddg_parameters({bits_, dp::joint_clip_norm(clip_norm_, weight), z, clients, honest,
                                      dimension + 1, options_.beta, options_.stddevs_in_range});
  }
  return dp::choose_ddg_parameters({bits_, clip_norm_, z, clients, honest, dimension, options_.beta,
                                    options_.stddevs_in_range});
}

dp::DdgParameters PrivacyBudget::histogram_parameters(std::uint32_t clients, std::uint32_t honest,
                                                      std::uint32_t bins) const {
  return dp::choose_accuracy_histogram_parameters(bins, options_.histogram_noise_multiplier, clients, honest, bits_,
                                                  options_.stddevs_in_range);
}

double PrivacyBudget::count_weight(double z, std::uint32_t clients, std::uint32_t honest) const {
  if (!options_.adaptive_clipping.enabled || integer_sum_) return 0;
  const double real_z = options_.mode == PrivacyMode::kDistributed
                            ? z * std::sqrt(static_cast<double>(clients) / std::max<std::uint32_t>(honest, 1))
                            : z;
  return dp::clipped_count_weight(clip_norm_, real_z, dp::count_stddev_for(options_.adaptive_clipping, clients));
}

double PrivacyBudget::amplifying_rate() const {
  return options_.mode == PrivacyMode::kLocal ? 1.0 : options_.sampling_rate;
}

std::uint32_t PrivacyBudget::honest_survivors(std::uint32_t clients) const {
  // Central: the aggregator's own draw, one share with all the noise. Local: each client's own update carries all
  // of it, whoever else colludes.
  if (options_.mode == PrivacyMode::kCentral || options_.mode == PrivacyMode::kLocal) return 1;
  const auto colluders = static_cast<std::uint32_t>(std::ceil(corruption_rate_ * clients - 1e-12));
  const std::uint32_t survivors = std::min(options_.min_survivors, clients);
  return survivors > colluders ? survivors - colluders : 0;
}

std::variant<RoundCharge, std::string> PrivacyBudget::price(std::uint32_t clients, std::uint64_t dimension,
                                                           std::uint32_t histogram_bins) const {
  RoundCharge charge;
  charge.clients = clients;
  const std::uint32_t honest = honest_survivors(clients);
  if (honest == 0) {
    return "privacy: with " + std::to_string(clients) + " clients and secure_aggregation.corruption_rate = " +
           util::short_number(corruption_rate_) + ", the colluders assumed leave no honest share among " +
           "privacy.min_survivors = " + std::to_string(options_.min_survivors) + ": raise min_survivors";
  }
  try {
    charge.count_weight = count_weight(options_.noise_multiplier, clients, honest);
    charge.ddg = parameters(options_.noise_multiplier, clients, honest, dimension, charge.count_weight);
    charge.update_clip_norm = clip_norm_;
    charge.rdp = dp::ddg_rdp(charge.ddg, 1.0, orders_);
    const double q = amplifying_rate();
    charge.rdp_released = q < 1 ? dp::ddg_rdp(charge.ddg, q, orders_) : charge.rdp;
    if (histogram_bins > 0) {
      // Amplification by sampling would have to apply to the two mechanisms together, not to each: not claimed.
      if (q < 1) return std::string("privacy: accuracy histograms are not accounted under Poisson sampling");
      charge.histogram = histogram_parameters(clients, honest, histogram_bins);
      const auto rdp = dp::ddg_rdp(*charge.histogram, 1.0, orders_);
      for (std::size_t i = 0; i < rdp.size(); ++i) {
        charge.rdp[i] += rdp[i];
        charge.rdp_released[i] += rdp[i];
      }
    }
  } catch (const Error& e) {
    return std::string("privacy: ") + e.what();
  }
  return charge;
}

std::variant<RoundCharge, PlanRefusal> PrivacyBudget::plan(std::uint64_t round_id, std::uint32_t clients,
                                                           std::uint64_t dimension,
                                                           std::uint32_t histogram_bins) const {
  auto priced = price(clients, dimension, histogram_bins);
  if (auto* why = std::get_if<std::string>(&priced)) return PlanRefusal{false, *why};
  RoundCharge charge = std::move(std::get<RoundCharge>(priced));
  charge.round_id = round_id;
  std::vector<double> after = spent_, after_released = released_;
  for (std::size_t i = 0; i < after.size(); ++i) {
    after[i] += charge.rdp[i];
    after_released[i] += charge.rdp_released[i];
  }
  charge.epsilon = dp::epsilon_from_rdp(orders_, after, options_.delta);
  charge.epsilon_released = dp::epsilon_from_rdp(orders_, after_released, options_.delta);
  if (options_.target_epsilon > 0 && charge.epsilon_released.epsilon > options_.target_epsilon) {
    return PlanRefusal{true, "privacy budget: round " + std::to_string(round_id) +
                                 " would bring the epsilon spent to " +
                                 util::short_number_apart(charge.epsilon_released.epsilon, options_.target_epsilon) +
                                 " (delta " +
                                 util::short_number(options_.delta) + "), over privacy.target_epsilon = " +
                                 util::short_number(options_.target_epsilon) + " (spent so far: " +
                                 util::short_number_apart(spent_released().epsilon, options_.target_epsilon) +
                                 "); the run stops here — raise the budget or the noise to go on"};
  }
  crypto::random_bytes(charge.rotation_seed);
  return charge;
}

void PrivacyBudget::debit(const RoundCharge& charge) {
  for (std::size_t i = 0; i < spent_.size(); ++i) {
    spent_[i] += charge.rdp[i];
    released_[i] += charge.rdp_released[i];
  }
}

void PrivacyBudget::charge_skipped_draw(std::uint32_t expected_clients, std::uint64_t dimension) {
  if (!enabled() || amplifying_rate() >= 1) return;
  auto priced = price(std::max<std::uint32_t>(expected_clients, 1), dimension);
  if (auto* why = std::get_if<std::string>(&priced)) throw Error("a skipped draw cannot be charged: " + *why);
  const auto& charge = std::get<RoundCharge>(priced);
  for (std::size_t i = 0; i < released_.size(); ++i) released_[i] += charge.rdp_released[i];
  ++skipped_;
}

void PrivacyBudget::charge_released(const RoundCharge& charge) {
  if (amplifying_rate() >= 1) return;  // unsampled: an abandoned round released nothing to anyone
  for (std::size_t i = 0; i < released_.size(); ++i) released_[i] += charge.rdp_released[i];
}

namespace {

dp::Epsilon epsilon_of(const std::vector<double>& orders, const std::vector<double>& rdp, double delta) {
  bool any = false;
  for (double r : rdp) any = any || r > 0;
  if (!any) return {0, 0};
  return dp::epsilon_from_rdp(orders, rdp, delta);
}

}  // namespace

dp::Epsilon PrivacyBudget::spent() const {
  return epsilon_of(orders_, spent_, options_.delta);
}

dp::Epsilon PrivacyBudget::spent_released() const {
  return epsilon_of(orders_, released_, options_.delta);
}

}  // namespace sotto::aggregator
