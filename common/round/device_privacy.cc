#include "common/round/device_privacy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/dp/ddg_accounting.h"
#include "common/dp/integer_sum.h"
#include "common/dp/rdp_accountant.h"
#include "common/util/error.h"
#include "common/util/short_number.h"

namespace sotto::round {

PlanPrivacy plan_privacy(const Task& task) {
  if (task.secure) {
    const auto& s = *task.secure;
    return {s.noise ? &*s.noise : nullptr, s.config.n, s.clip_norm, s.bound, s.evaluation_bins};
  }
  return {task.plain_noise ? &*task.plain_noise : nullptr, std::nullopt, task.plan.clip_norm, {}, 0};
}

std::variant<std::optional<DeviceCharge>, std::string> judge_plan(const DevicePrivacy& floor,
                                                                  const SecureAssignment* secure,
                                                                  const std::vector<double>& spent_rdp) {
  if (!secure) return judge_plan(floor, PlanPrivacy{}, spent_rdp);
  return judge_plan(floor, PlanPrivacy{secure->noise ? &*secure->noise : nullptr, secure->config.n, secure->clip_norm,
                                       secure->bound, secure->evaluation_bins},
                    spent_rdp);
}

namespace {

// The accuracy histograms' own mechanism (dp::kOneHotPairBound over 2·bins words, scale 1) with this device's
// noise share and honest count, added to its charge: the RDPs of the two mechanisms add.
void add_histogram_charge(const DistributedNoise& plan, std::uint32_t bins, std::uint32_t bits, DeviceCharge& charge) {
  dp::DdgParameters h;
  h.bits = bits;
  h.dimension = h.padded = 2ull * bins;
  h.scale = 1;
  h.clip_norm = h.l2_bound = dp::l2_sensitivity(dp::kOneHotPairBound, h.dimension);
  h.l1_bound = dp::l1_sensitivity(dp::kOneHotPairBound, h.dimension);
  h.local_stddev = plan.histogram_local_stddev;
  h.honest = charge.honest;
  charge.histogram_noise_multiplier =
      dp::effective_local_stddev(h.local_stddev) * std::sqrt(static_cast<double>(h.honest)) / h.l2_bound;
  const auto rdp = dp::ddg_rdp(h, 1.0, dp::default_orders());
  for (std::size_t i = 0; i < charge.rdp.size(); ++i) charge.rdp[i] += rdp[i];
}

}  // namespace

std::variant<std::optional<DeviceCharge>, std::string> judge_plan(const DevicePrivacy& floor,
                                                                  const PlanPrivacy& task,
                                                                  const std::vector<double>& spent_rdp) {
  const std::string refused = "this device's privacy settings refuse the round: ";
  const std::string mode = task.noise ? noise_source_mode(task.noise->source) : "off";
  if (!floor.accepted_modes.empty() &&
      std::find(floor.accepted_modes.begin(), floor.accepted_modes.end(), mode) == floor.accepted_modes.end()) {
    return refused + "its privacy mode \"" + mode + "\" is not among privacy.accepted_modes";
  }
  if (!task.noise) {
    if (floor.require_noise) return refused + "it adds no distributed DP noise (privacy.require_noise = true)";
    return std::optional<DeviceCharge>{};
  }
  const DistributedNoise& plan = *task.noise;
  const bool central = plan.source == NoiseSource::kAggregator;
  if (central && floor.require_noise) {
    return refused + "its noise is central (added by the aggregator, which this device would have to trust), and "
                     "privacy.require_noise asks for this device's own share";
  }
  if (!plan.integer_sum && floor.max_clip_norm > 0 && task.clip_norm > floor.max_clip_norm) {
    return refused + "its clip norm " + util::short_number(task.clip_norm) + " is above privacy.max_clip_norm = " +
           util::short_number(floor.max_clip_norm);
  }
  if (!task.secure_cohort && plan.source == NoiseSource::kShares) {
    return refused + "distributed noise shares protect nothing outside a secure sum";
  }
  const std::uint32_t cohort = task.secure_cohort.value_or(plan.min_survivors);
  if (plan.min_survivors > cohort) {
    return refused + "its min_survivors = " + std::to_string(plan.min_survivors) + " is above the " +
           std::to_string(cohort) + " clients of the round, so it promises noise shares that cannot exist";
  }
  // Corrupt clients never drop out: all of the cohort's colluders may be among the survivors.
  const auto colluders = static_cast<std::uint32_t>(std::ceil(floor.assumed_corruption_rate * cohort - 1e-12));
  if (plan.source == NoiseSource::kShares && plan.min_survivors <= colluders) {
    return refused + "with min_survivors = " + std::to_string(plan.min_survivors) + " and " +
           util::short_number(floor.assumed_corruption_rate) + " of the " + std::to_string(cohort) +
           " clients assumed to collude, no honest share is left";
  }
  DeviceCharge charge;
  charge.mode = mode;
  // Central: the aggregator's word, one draw. Local: this device's own share is all the noise, whoever colludes.
  charge.honest = plan.source == NoiseSource::kShares ? plan.min_survivors - colluders : 1;
  charge.epsilon_stated = plan.epsilon_stated;
  dp::DdgParameters counted = plan.ddg;
  counted.honest = charge.honest;
  try {
    if (plan.integer_sum) {  // the sensitivities follow from the contribution bound this device enforces
      counted.l2_bound = dp::l2_sensitivity(task.bound, counted.dimension);
      counted.l1_bound = dp::l1_sensitivity(task.bound, counted.dimension);
    } else {  // the L1 bound follows from the L2 bound this device enforces itself; the plan's is not taken on trust
      counted.l1_bound = counted.l2_bound * std::min(std::sqrt(static_cast<double>(counted.padded)), counted.l2_bound);
    }
    charge.noise_multiplier =
        dp::effective_local_stddev(counted.local_stddev) * std::sqrt(static_cast<double>(charge.honest)) /
        counted.l2_bound;
    charge.rdp = dp::ddg_rdp(counted, 1.0, dp::default_orders());
    if (task.histogram_bins > 0) add_histogram_charge(plan, task.histogram_bins, counted.bits, charge);
  } catch (const Error& e) {
    return refused + "its noise parameters cannot be accounted: " + e.what();
  }
  const auto too_little = [&](const std::string& what, double z) {
    return refused + what + " implies a noise multiplier of " + util::short_number(z) + " with " +
           std::to_string(charge.honest) + " honest survivors, below privacy.min_noise_multiplier = " +
           util::short_number(floor.min_noise_multiplier);
  };
  if (charge.noise_multiplier < floor.min_noise_multiplier) {
    return too_little("its noise share", charge.noise_multiplier);
  }
  if (task.histogram_bins > 0 && charge.histogram_noise_multiplier < floor.min_noise_multiplier) {
    return too_little("its accuracy histograms' noise share", charge.histogram_noise_multiplier);
  }
  std::vector<double> after = spent_rdp.empty() ? std::vector<double>(charge.rdp.size(), 0.0) : spent_rdp;
  for (std::size_t i = 0; i < after.size() && i < charge.rdp.size(); ++i) after[i] += charge.rdp[i];
  charge.epsilon = dp::epsilon_from_rdp(dp::default_orders(), after, floor.delta).epsilon;
  if (floor.max_epsilon > 0 && charge.epsilon > floor.max_epsilon) {
    return refused + "it would bring this device's own epsilon to " + util::short_number(charge.epsilon) + " (delta " +
           util::short_number(floor.delta) + "), over privacy.max_epsilon = " + util::short_number(floor.max_epsilon);
  }
  return std::optional<DeviceCharge>{std::move(charge)};
}

}  // namespace sotto::round
