#include "aggregator/privacy_budget.h"

#include <cmath>

#include "common/crypto/random.h"
#include "common/dp/ddg_accounting.h"
#include "common/util/error.h"
#include "common/util/short_number.h"

namespace sotto::aggregator {

PrivacyBudget::PrivacyBudget(PrivacyOptions options, std::uint32_t bits, double corruption_rate, double clip_norm,
                             std::vector<double> spent_rdp)
    : options_(options), bits_(bits), clip_norm_(clip_norm), orders_(dp::default_orders()), spent_(std::move(spent_rdp)) {
  const auto colluders = static_cast<std::uint32_t>(std::ceil(corruption_rate * options_.min_survivors - 1e-12));
  honest_ = options_.min_survivors > colluders ? options_.min_survivors - colluders : 1;
  if (spent_.empty()) spent_.assign(orders_.size(), 0.0);
  if (spent_.size() != orders_.size()) {
    throw Error("privacy: the recorded RDP has " + std::to_string(spent_.size()) + " orders, expected " +
                std::to_string(orders_.size()));
  }
  if (enabled() && !(options_.noise_multiplier > 0) && !(options_.target_epsilon > 0)) {
    throw Error("privacy: set privacy.noise_multiplier, or privacy.target_epsilon to have it computed");
  }
}

void PrivacyBudget::fit_noise_to_budget(std::uint64_t rounds, std::uint32_t clients, std::uint64_t dimension) {
  if (!enabled() || options_.noise_multiplier > 0) return;
  // What is already spent counts: compose it with the candidate's rounds by searching on the whole.
  const double spent_epsilon = spent().epsilon;
  if (spent_epsilon >= options_.target_epsilon) {
    options_.noise_multiplier = 1;  // any: plan() refuses the first round as over budget
    return;
  }
  const dp::DdgSettings settings{bits_, clip_norm_, 1, clients, std::min(honest_, clients), dimension,
                                 options_.beta, options_.stddevs_in_range};
  try {
    options_.noise_multiplier = dp::ddg_noise_multiplier_for(settings, 1, rounds, options_.delta,
                                                             options_.target_epsilon);
  } catch (const Error& e) {
    throw Error(std::string("privacy.target_epsilon: ") + e.what());
  }
  // With earlier runs' spending, the fresh multiplier may overshoot the rest of the budget: raise it until it fits.
  for (int i = 0; i < 200; ++i) {
    auto planned = plan(0, clients, dimension);
    auto* charge = std::get_if<RoundCharge>(&planned);
    std::vector<double> total = spent_;
    if (charge) {
      for (std::size_t k = 0; k < total.size(); ++k) total[k] += charge->rdp[k] * static_cast<double>(rounds);
      if (dp::epsilon_from_rdp(orders_, total, options_.delta).epsilon <= options_.target_epsilon) return;
    }
    options_.noise_multiplier *= 1.02;
  }
}

std::variant<RoundCharge, PlanRefusal> PrivacyBudget::plan(std::uint64_t round_id, std::uint32_t clients,
                                                           std::uint64_t dimension) const {
  RoundCharge charge;
  charge.round_id = round_id;
  charge.clients = clients;
  try {
    charge.ddg = dp::choose_ddg_parameters({bits_, clip_norm_, options_.noise_multiplier, clients,
                                            std::min(honest_, clients), dimension, options_.beta,
                                            options_.stddevs_in_range});
    charge.rdp = dp::ddg_rdp(charge.ddg, 1.0, orders_);
  } catch (const Error& e) {
    return PlanRefusal{false, std::string("privacy: ") + e.what()};
  }
  std::vector<double> after = spent_;
  for (std::size_t i = 0; i < after.size(); ++i) after[i] += charge.rdp[i];
  charge.epsilon = dp::epsilon_from_rdp(orders_, after, options_.delta);
  if (options_.target_epsilon > 0 && charge.epsilon.epsilon > options_.target_epsilon) {
    return PlanRefusal{true, "privacy budget: round " + std::to_string(round_id) + " would bring the epsilon spent to " +
           util::short_number(charge.epsilon.epsilon) + " (delta " + util::short_number(options_.delta) +
           "), over privacy.target_epsilon = " + util::short_number(options_.target_epsilon) + " (spent so far: " +
           util::short_number(spent().epsilon) + "); the run stops here — raise the budget or the noise to go on"};
  }
  crypto::random_bytes(charge.rotation_seed);
  return charge;
}

void PrivacyBudget::debit(const RoundCharge& charge) {
  for (std::size_t i = 0; i < spent_.size(); ++i) spent_[i] += charge.rdp[i];
}

dp::Epsilon PrivacyBudget::spent() const {
  bool any = false;
  for (double r : spent_) any = any || r > 0;
  if (!any) return {0, 0};
  return dp::epsilon_from_rdp(orders_, spent_, options_.delta);
}

}  // namespace sotto::aggregator
