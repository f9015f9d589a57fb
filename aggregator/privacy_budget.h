// PrivacyBudget: what differential privacy a run has spent, what the next round would cost, and whether the
// budget ([privacy] target_epsilon at delta) allows it — the aggregator's accountant, as a value (no I/O: the
// coordinator emits a debit action, and the server writes it to the privacy journal before any sum is unmasked).
//
// A round's charge is the Rényi DP of its mechanism at every order of dp::default_orders(): in distributed mode the
// Distributed Discrete Gaussian over the round's cohort, with the honest survivors' shares alone carrying the noise
// (dp/ddg_accounting.h). Two epsilons are kept. Against the aggregator, which sees who took part, no amplification
// (q = 1). Against whoever sees only the released models, amplified by PrivacyOptions::sampling_rate when the
// sampling is really random (sotto-sim's Poisson draws, each draw too small to run charged as a round too); the
// daemon's cohorts are whoever checks in, so it claims none and the two are equal. The budget applies to the
// second. Charges compose by adding RDP; epsilon is the smallest over the orders (dp::epsilon_from_rdp).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "aggregator/coordinator_options.h"
#include "common/dp/ddg_parameters.h"
#include "common/dp/integer_sum.h"
#include "common/dp/randomized_rotation.h"
#include "common/dp/rdp_accountant.h"

namespace sotto::aggregator {

// The sampling assumption rounds.jsonl records.
inline constexpr const char* kNoAmplification = "none: cohorts are self-selected check-ins (q = 1)";
inline constexpr const char* kLocalNoAmplification =
    "none: local DP bounds each client's own update, which its receiver sees with the client's identity (q = 1)";

struct RoundCharge {
  std::uint64_t round_id = 0;
  std::uint32_t clients = 0;  // n: the cohort summed
  dp::DdgParameters ddg;     // under adaptive clipping: of [update, clipped-count coordinate] (dp/adaptive_clipping.h)
  double update_clip_norm = 0;  // C, the update's own clip norm
  double count_weight = 0;      // the clipped-count coordinate's weight; 0: no adaptive clipping
  dp::RotationSeed rotation_seed{};
  // The accuracy histograms' mechanism when the round carries them (dp::kOneHotPairBound over 2·bins words);
  // rdp and rdp_released include its charge.
  std::optional<dp::DdgParameters> histogram;
  std::vector<double> rdp;           // this round alone, against the aggregator (q = 1)
  std::vector<double> rdp_released;  // against the released models (amplified by the sampling rate)
  dp::Epsilon epsilon;               // spent after this round, against the aggregator
  dp::Epsilon epsilon_released;      // spent after this round, against the released models
};

// Why a round may not run: over the budget (the run stops), or parameters that cannot work (the round is abandoned).
struct PlanRefusal {
  bool over_budget = false;
  std::string why;
};

class PrivacyBudget {
 public:
  // `spent_rdp`: what earlier runs debited (empty: nothing). `integer_sum`: the rounds are private secure sums of
  // integer vectors within this bound (dp/integer_sum.h), not training. Throws sotto::Error for options that
  // cannot work.
  PrivacyBudget(PrivacyOptions options, std::uint32_t bits, double corruption_rate, double clip_norm,
                std::vector<double> spent_rdp, std::optional<dp::ContributionBound> integer_sum = std::nullopt);

  bool enabled() const { return options_.mode != PrivacyMode::kOff; }
  // With no noise multiplier configured: the smallest (to a relative 1e-6) that lets `rounds` more rounds of `clients`
  // updates of `dimension` coordinates fit the budget left, fixed for the run from now on. Throws sotto::Error
  // when no multiplier up to 10^4 does.
  // With `histogram_bins`, each round's accuracy histograms are charged too.
  void fit_noise_to_budget(std::uint64_t rounds, std::uint32_t clients, std::uint64_t dimension,
                           std::uint32_t histogram_bins = 0);
  const PrivacyOptions& options() const { return options_; }
  // The sampling rate the released-model accountant amplifies by: the configured one, except in local mode, whose
  // guarantee is on each client's own update, seen by its receiver with the client's identity (q = 1).
  double amplifying_rate() const;
  // The honest survivors the accountant counts on in a round of `clients`: min_survivors less the colluders it
  // assumes, corruption_rate of the cohort rounded up (corrupt clients never drop out, so all of them may be among
  // the survivors); 1 in central mode, where the aggregator draws the whole noise itself. 0: none is left.
  std::uint32_t honest_survivors(std::uint32_t clients) const;

  // The charge of a round summing `clients` updates of `dimension` coordinates (and accuracy histograms of
  // `histogram_bins` bins), or why it may not run (the budget would be exceeded, the parameters cannot work).
  std::variant<RoundCharge, PlanRefusal> plan(std::uint64_t round_id, std::uint32_t clients, std::uint64_t dimension,
                                              std::uint32_t histogram_bins = 0) const;
  void debit(const RoundCharge& charge);
  // A sampled draw too small to run: nothing is released, but the draw's outcome depends on who was drawn, so the
  // released-model accountant is charged as for a round of `expected_clients` (never the aggregator's).
  void charge_skipped_draw(std::uint32_t expected_clients, std::uint64_t dimension);
  std::uint64_t skipped_draws_charged() const { return skipped_; }
  // A sampled round abandoned before its debit: what the draw itself reveals, to the released-model accountant
  // (nothing when unsampled).
  void charge_released(const RoundCharge& charge);

  dp::Epsilon spent() const;  // against the aggregator
  dp::Epsilon spent_released() const;
  const std::vector<double>& spent_rdp() const { return spent_; }
  const std::vector<double>& orders() const { return orders_; }
  // The update clip norm the next rounds are charged and encoded with (adaptive clipping moves it).
  double clip_norm() const { return clip_norm_; }
  void set_clip_norm(double clip_norm) { clip_norm_ = clip_norm; }

 private:
  // The round's parameters and RDP for `clients` summed, without the budget check or the rotation seed.
  std::variant<RoundCharge, std::string> price(std::uint32_t clients, std::uint64_t dimension,
                                               std::uint32_t histogram_bins = 0) const;
  dp::DdgParameters histogram_parameters(std::uint32_t clients, std::uint32_t honest, std::uint32_t bins) const;
  // The mechanism's parameters at noise multiplier z (throws sotto::Error for parameters that cannot work); under
  // adaptive clipping (`weight` = count_weight(z, clients, honest) > 0), of the update and its clipped-count
  // coordinate together.
  dp::DdgParameters parameters(double z, std::uint32_t clients, std::uint32_t honest, std::uint64_t dimension,
                               double weight) const;
  // The clipped-count coordinate's weight at noise multiplier z (0 without adaptive clipping), so that the sum of
  // bits really carries privacy.clipped_count_stddev: in distributed mode all `clients` add a share of the noise the
  // accountant counts on `honest` of them for, so the sum's noise is sqrt(clients / honest) times z's.
  double count_weight(double z, std::uint32_t clients, std::uint32_t honest) const;

  PrivacyOptions options_;
  std::uint32_t bits_;
  double corruption_rate_;
  double clip_norm_;
  std::vector<double> orders_;
  std::vector<double> spent_;
  std::vector<double> released_;
  std::uint64_t skipped_ = 0;
  std::optional<dp::ContributionBound> integer_sum_;
};

}  // namespace sotto::aggregator
