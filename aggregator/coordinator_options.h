// The RoundCoordinator's configuration: how many rounds and clients, its windows and deadlines, the training plan,
// secure aggregation's parameters; and where a resumed aggregator starts. Times are steady-clock durations, read
// against the times the caller passes in.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/dp/adaptive_clipping.h"
#include "common/dp/integer_sum.h"
#include "common/ml/training_plan.h"
#include "common/model/parameters.h"

namespace sotto::aggregator {

using ConnectionId = std::uint64_t;
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;

// Seconds from a to b, for the round's reports.
inline double seconds_between(TimePoint a, TimePoint b) {
  return std::chrono::duration<double>(b - a).count();
}

// Runs `work` and adds its duration by `stopwatch` (empty: not measured) to `seconds`, even when it throws;
// returns what `work` returns. The coordinator's and the update sum's timings both go through it.
template <typename Work>
auto timed_by(const std::function<TimePoint()>& stopwatch, double& seconds, Work&& work) {
  struct Add {
    const std::function<TimePoint()>& stopwatch;
    double& seconds;
    TimePoint start;
    ~Add() {
      if (stopwatch) seconds += seconds_between(start, stopwatch());
    }
  } add{stopwatch, seconds, stopwatch ? stopwatch() : TimePoint{}};
  return work();
}

// Secure aggregation (SecAgg+): the aggregator learns only the sum of the surviving clients' clipped, quantized
// updates (clipped to CoordinatorOptions::clip_norm) and applies their unweighted mean through the strategy.
struct SecureAggregationOptions {
  bool enabled = false;
  double dropout_rate = 0.1;       // expected fraction of clients lost during a round, for choosing k and t
  double corruption_rate = 0.05;   // fraction of clients assumed to collude with the aggregator
  bool complete_graph = false;     // k = n - 1: the original SecAgg instead of SecAgg+
  std::uint32_t neighbours = 0;    // fixed k (even, < n), 0 = chosen by secagg::find_parameters
  std::uint32_t threshold = 0;     // fixed t, 0 = chosen with k
  std::uint32_t bits = 32;         // the modulus 2^bits of inputs, masks and sum; masked inputs upload packed
  Duration step_deadline = std::chrono::seconds(30);  // for each of the steps after training
};

// Differential privacy ([privacy]): which mechanism noises a round's sum, how much, and the budget it may spend.
// kDistributed: the Distributed Discrete Gaussian in secure rounds — every client adds its share of the noise
// (common/dp/ddg_encoding.h), and the aggregator only ever sees the noised sum. kCentral: the same encoding without
// the clients' shares; the aggregator, trusted, adds all the noise (one discrete Gaussian) to the unmasked sum
// before anything is released. kLocal: every client adds the whole noise to its own update, trusting no one (the
// aggregator and the other clients alike); the sum then carries n times the noise, and each client's epsilon is
// that of its own update alone (honest = 1, q = 1).
enum class PrivacyMode { kOff, kDistributed, kCentral, kLocal };

const char* privacy_mode_name(PrivacyMode mode);

struct PrivacyOptions {
  PrivacyMode mode = PrivacyMode::kOff;
  double noise_multiplier = 0;  // z: the honest survivors' noise has standard deviation z times the L2 sensitivity
  double delta = 1e-5;
  double target_epsilon = 0;    // the budget at `delta`; 0: none (the epsilon spent is still reported)
  // The fewest survivors whose noise shares make up the noise: the aggregator refuses to unmask a sum of fewer,
  // and the accountant counts only the honest among them (secure_aggregation.corruption_rate are assumed to
  // collude with it and take their own shares out).
  std::uint32_t min_survivors = 3;
  double beta = 0.6065306597126334;  // conditional rounding's parameter, exp(-1/2)
  double stddevs_in_range = 4;       // the modulus holds the sum with this many standard deviations to spare
  // The probability with which each user is in a round, when the sampling is really random and secret from those
  // who see only the released models (sotto-sim's Poisson draws); 1: no amplification claimed (the daemon).
  double sampling_rate = 1;
  // The clients a round's mechanism is built for, and the mean's fixed denominator: with Poisson sampling the
  // expected cohort, so that the mechanism does not depend on who was drawn; 0: the round's own cohort.
  std::uint32_t expected_clients = 0;
  // The clip norm follows a target quantile of the update norms (secure rounds under distributed or central DP).
  dp::AdaptiveClipping adaptive_clipping;
  // z of the accuracy histograms' own noise (evaluation.local_histogram_bins, distributed mode): against their D2 of
  // sqrt(2) (dp::kOneHotPairBound), charged with the update's.
  double histogram_noise_multiplier = 0;
};

// How a plain round averages its updates: by their example counts (FedAvg; the counts are self-reported and capped
// by max_examples_per_client), or each client equally. Secure rounds always average equally: the sum hides who
// contributed what.
enum class Weighting { kExamples, kUniform };

// The secure-aggregation clip norm when the config names none.
inline constexpr double kDefaultSecureClipNorm = 30.0;

struct CoordinatorOptions {
  std::uint64_t total_rounds = 5;
  std::uint32_t cohort_target = 8;
  std::uint32_t cohort_min = 1;
  Duration checkin_window = std::chrono::seconds(30);
  Duration training_deadline = std::chrono::seconds(600);
  Duration retry_delay = std::chrono::seconds(5);
  ml::TrainingPlan plan;  // its clip_norm is set from clip_norm below
  std::uint64_t seed = 0;
  // The round's L2 bound on each update's floating-point tensors (privacy.clip_norm); 0 = none, which only a plain
  // round allows. Clients clip to it before sending; in plain rounds the coordinator clips again what arrives, so a
  // client that skips the step gains nothing. (Secure aggregation cannot check it: see the README's trust model.)
  double clip_norm = 0;
  // The most examples an update may weigh in with (rounds.max_examples_per_client): a larger claim counts as this
  // many, in the weights and in the round's example-weighted metrics. Without a cap one client claiming 2^63
  // examples would move the model by its whole delta.
  std::uint64_t max_examples_per_client = 100'000;
  // A client convicted this many times in secure rounds (an accusation proved it sent shares that do not open, or
  // accused falsely) is refused at hello from then on (rounds.exclude_after_offences); 0: never.
  std::uint32_t exclude_after_offences = 0;
  PrivacyOptions privacy;
  Weighting weighting = Weighting::kExamples;
  // Plain rounds: add the updates in client-id order, so that the new model does not depend on the order they
  // arrived in (floating-point addition is not associative). An update is added as soon as every cohort member
  // with a smaller id has sent its update or left; until then it is held. Arriving in id order, nothing is held;
  // in random order, about half the cohort's updates are at worst. Off, updates are summed as they arrive.
  bool reproducible_aggregation = false;
  // Give up after this many abandoned rounds in a row (0: never): the run is finished, and gave_up() says why.
  // Abandoned rounds do not count toward total_rounds, so without a limit a diverging plan never ends.
  std::uint32_t max_consecutive_abandoned = 0;
  SecureAggregationOptions secure;
  // Federated analytics instead of training: each round publishes the secure sum of the survivors' integer
  // vectors of this length (needs secure.enabled); the model and the strategy are not used.
  std::uint64_t secure_sum_length = 0;
  // The bound every contribution to a secure sum must keep (the devices refuse one over it); with differential
  // privacy on, the mechanism's sensitivity (dp/integer_sum.h). Unbounded by default, which DP refuses.
  dp::ContributionBound secure_sum_bound;
  // Secure training rounds ask each device for its held-out accuracies as histograms of this many bins, added to
  // its masked input (ml/accuracy_histogram.h); 0: none. Not with DP.
  std::uint32_t evaluation_bins = 0;
  // Reads the time for RoundReport::aggregation_seconds, the time spent in the strategy; none: not measured. The
  // coordinator calls no clock of its own: the server passes the steady clock, tests may pass a fake.
  std::function<TimePoint()> stopwatch;
};

// Where a resumed aggregator starts.
struct CoordinatorStart {
  model::ModelParameters global_model;
  std::uint64_t next_round_id = 1;
  std::uint64_t completed_rounds = 0;
  model::ModelParameters strategy_state;  // from Strategy::save_state(); empty for a fresh start
  std::map<std::string, std::uint32_t> offences;  // per client id: convictions so far (checkpointed)
  std::vector<double> privacy_rdp;  // the RDP spent so far at dp::default_orders() (the privacy journal's sum)
  double clip_norm = 0;  // adaptive clipping: the clip norm the run had reached (checkpointed); 0: the configured one
};

}  // namespace sotto::aggregator
