// RoundReport: what the coordinator says of a round when it closes — completed or abandoned and why, who took part
// and who was dropped with their reasons, training metrics, the phases' durations and, in a secure round, SecAgg+'s
// parameters and how many clients completed each step. rounds.jsonl (round_log.h) writes it out.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/dp/integer_sum.h"
#include "common/ml/accuracy_histogram.h"
#include "common/ml/training_plan.h"
#include "common/secagg/step.h"

namespace sotto::aggregator {

struct RoundReport {
  std::uint64_t round_id = 0;
  bool completed = false;
  std::string abandon_reason;
  std::uint32_t cohort = 0;     // clients that received the task
  std::uint32_t survivors = 0;  // valid updates aggregated
  std::uint64_t examples = 0;
  double mean_train_loss = 0;      // example-weighted, over survivors
  double mean_train_accuracy = 0;  // example-weighted, over survivors
  // The survivors' own held-out accuracies (global and personal model), from the devices that report them.
  std::vector<ml::LocalEvaluation> local_evaluations;
  // Or, in a secure round that asked for them, their histograms from the secure sum (or why the sum cannot be one).
  std::optional<ml::AccuracyHistogram> local_histogram;
  std::string local_histogram_problem;
  double local_histogram_noise_stddev = 0;  // each bin's noise under distributed DP (0: none)
  double slowest_train_seconds = 0;
  double checkin_seconds = 0;
  double training_seconds = 0;     // task sent to round closed
  double aggregation_seconds = 0;  // time in the strategy, by the coordinator's stopwatch (reporting only)
  struct SecAgg {
    std::uint32_t n = 0, k = 0, t = 0;
    secagg::PerStep<std::uint32_t> completed;  // clients that completed each step
    secagg::PerStep<double> seconds;           // each step, from its start to its close
    struct Conviction {                        // a client an accusation proved at fault (secagg::ServerSession)
      std::string client;
      std::string offence;
      std::string accused_by;      // the accuser's client id (the culprit's own for a false accusation)
      bool input_counted = false;  // its masked input was already in the sum and stays there
    };
    std::vector<Conviction> convicted;
    // The server's own work on the round's vectors, by the coordinator's stopwatch (reporting only): checking and
    // adding the masked inputs (summing), removing the masks (unmasking), and mapping the sum back to the model's
    // values (decoding: DDG's inverse rotation and scaling, or the quantizer's). The strategy's part is
    // RoundReport::aggregation_seconds.
    double summing_seconds = 0;
    double unmasking_seconds = 0;
    double decoding_seconds = 0;
  };
  std::optional<SecAgg> secagg;
  struct Privacy {  // a round under differential privacy
    std::string mode;
    double clip_norm = 0, noise_multiplier = 0, delta = 0;
    std::uint32_t bits = 0, clients = 0, min_survivors = 0, honest = 0;
    double scale = 0, l2_bound = 0, local_stddev = 0;
    std::uint64_t dimension = 0;
    bool charged = false;        // debited (the sum was to be unmasked)
    double epsilon_spent = 0;    // after this round, over the run (and every run before it), against the aggregator
    double order = 0;            // the RDP order that gave it
    double epsilon_released = 0;  // the same against whoever sees only the released models (amplified)
    double sampling_rate = 1;     // the amplification claimed (1: none)
    std::uint64_t skipped_draws = 0;  // sampled draws too small to run, charged to epsilon_released
    std::string sampling;
    dp::ContributionBound bound;  // a private secure sum's contribution bound (its sensitivity's source)
    // Adaptive clipping (dp/adaptive_clipping.h): the clipped-count coordinate's weight (0: off), the clip norm of
    // [update, count] the mechanism bounds, the fraction of updates left unclipped as the noised sum tells it
    // (once decoded), and the clip norm the next round starts from.
    double count_weight = 0;
    double mechanism_clip_norm = 0;
    std::optional<double> unclipped_fraction;
    double next_clip_norm = 0;
    // The accuracy histograms' own mechanism (dp::kOneHotPairBound), charged in the epsilon above: 0 bins when none.
    std::uint32_t histogram_bins = 0;
    double histogram_noise_multiplier = 0;
    double histogram_local_stddev = 0;
  };
  std::optional<Privacy> privacy;
  std::vector<std::uint32_t> secure_sum;  // a secure-sum round's result (mod 2^bits), without DP
  std::vector<std::int64_t> private_sum;  // a private secure sum's result: signed, the noise included
  std::vector<std::string> participants;
  std::vector<std::pair<std::string, std::string>> dropped;  // client id, reason
  std::map<std::string, std::uint32_t> drop_causes;          // how many drops had each cause (for the metrics)
  std::vector<std::string> clipped;          // plain rounds: clients whose update the coordinator scaled to clip_norm
  std::vector<std::string> examples_capped;  // clients that claimed more than max_examples_per_client examples
};

}  // namespace sotto::aggregator
