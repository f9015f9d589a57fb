// DevicePrivacy: the person's (or the app's) floor on the privacy of what this device sends, and the device's own
// accountant — the check a participant makes on a round's plan before it trains, without taking the aggregator's
// word for the total noise.
//
// The device recomputes the noise its own share implies: it assumes that up to `assumed_corruption_rate` of the
// round's n clients (rounded up) collude with the aggregator — all of them may be among the survivors — and take
// their shares out, so the honest shares number h = min_survivors - that (and min_survivors may not exceed n); with its own share's standard deviation sigma (the exact sampler's) and the L2
// bound it itself enforces by conditional rounding, the noise multiplier it can count on is sigma·sqrt(h)/l2_bound.
// It refuses a plan that asks for less than min_noise_multiplier, a clip norm above max_clip_norm, no noise when
// noise is required, or a round that would take its own epsilon (the DDG's RDP composed over everything it sent,
// q = 1) over max_epsilon. A refused round gets nothing from the device: not its keys, not its update. In central
// mode the device adds no share and can only take the aggregator's word for the noise; require_noise refuses it. In
// local mode its own share is the whole noise (h = 1), so no collusion can take it away. accepted_modes, when not
// empty, lists the modes it takes part in ("off", "central", "distributed", "local"); any other is refused.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/round/messages.h"

namespace sotto::round {

struct DevicePrivacy {
  bool require_noise = false;            // refuse rounds without this device's own noise share (off, central)
  double min_noise_multiplier = 0;       // of the noise this device's share implies; 0: any
  double max_clip_norm = 0;              // 0: any
  double assumed_corruption_rate = 0.05; // of the plan's min_survivors, assumed to collude with the aggregator
  double max_epsilon = 0;                // the device's own budget at `delta`; 0: none
  double delta = 1e-5;
  std::vector<std::string> accepted_modes;  // empty: any the other settings allow
};

// What a task says about its privacy: its noise plan (none: off), the clients of a secure round (none: a plain
// round, whose noise is central or local, with no shares and no collusion to count), the clip norm it asks for,
// and a secure sum's contribution bound.
struct PlanPrivacy {
  const DistributedNoise* noise = nullptr;
  std::optional<std::uint32_t> secure_cohort;
  double clip_norm = 0;
  dp::ContributionBound bound;
  std::uint32_t histogram_bins = 0;  // accuracy histograms in the masked input, with their own noise share
};
PlanPrivacy plan_privacy(const Task& task);

// The charge of taking part under this plan (none for a round without noise), or why not.
// `spent_rdp`: what the device has already spent (empty: nothing).
std::variant<std::optional<DeviceCharge>, std::string> judge_plan(const DevicePrivacy& floor, const PlanPrivacy& plan,
                                                                  const std::vector<double>& spent_rdp);
// The same for a secure round's assignment (none: a plain round without noise).
std::variant<std::optional<DeviceCharge>, std::string> judge_plan(const DevicePrivacy& floor,
                                                                  const SecureAssignment* secure,
                                                                  const std::vector<double>& spent_rdp);

}  // namespace sotto::round
