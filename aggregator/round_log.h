// RoundLog: <state_dir>/rounds.jsonl — one JSON object per round, appended durably (fsynced, a torn last line from
// a crash cut off first: util/durable_append.h) as each round ends.
//
// Fields: schema_version (kRoundLogSchemaVersion; a reader takes the versions it knows, and a field added later
// comes with a new version, so old files keep their meaning), round, status ("completed"/"abandoned"), abandon_reason, cohort, survivors, examples, participants,
// dropped [{client, reason}], test_accuracy and test_loss (when evaluated), mean_train_loss, mean_train_accuracy,
// seconds {checkin, training, aggregation, slowest_client_training, evaluation}, bytes_in, bytes_out, and
// completed_rounds; restored_from_checkpoint (true) on a line a crash had lost, appended from the checkpoint on
// restart without its evaluation. Tools read it line by line (the demo prints it as a table).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>

#include <nlohmann/json.hpp>

#include "aggregator/round_report.h"
#include "common/ml/training_plan.h"

namespace sotto::aggregator {

// 1: the fields above. Readers treat a record without schema_version (written before it existed) as version 1.
// 2: adds clipped (plain rounds: the clients whose update the aggregator scaled down to privacy.clip_norm) and
//    examples_capped (the clients that claimed more than rounds.max_examples_per_client examples), each present
//    only when not empty.
// 3: adds secagg.convicted [{client, offence, accused_by, input_counted}]: the clients a SecAgg+ accusation proved at
//    fault (shares that do not open, or a false accusation), present only when not empty.
// 4: adds privacy {mode, clip_norm, noise_multiplier, delta, epsilon (spent over the whole run after this round, at
//    delta, against the aggregator: no amplification), order, epsilon_released (against whoever sees only the
//    models, amplified by sampling_rate; equal to epsilon when sampling_rate is 1), sampling_rate, skipped_draws
//    (sampled draws too small to run, charged to epsilon_released), epsilon_against_aggregator_applies (false in
//    central mode, where the aggregator sees the sum before its own noise: epsilon is then null), charged (false: no sum was unmasked, nothing debited), sampling (the amplification claimed),
//    bits, clients, min_survivors, honest, scale, l2_bound, local_stddev, dimension} on rounds under differential
//    privacy: `sotto-dp epsilon --mechanism ddg` with these reproduces epsilon. Under DP, examples counts
//    participations (the devices report none) and mean_train_loss and mean_train_accuracy are left out.
// 5: adds local_evaluation {clients, examples, global {mean, p10, median}, personal {mean, p10, median}}: the spread
//    over the devices that report it (evaluation.report_local, rounds without DP noise) of their accuracy on their
//    own held-out examples, the global model against their personal ones; present only when one reported.
inline constexpr int kRoundLogSchemaVersion = 5;

struct RoundTraffic {
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  // Secure rounds: bytes of each SecAgg step's messages, both ways.
  secagg::PerStep<std::uint64_t> secagg_in, secagg_out;
};

// The spread over devices of their held-out accuracy, the global model against their personal ones: clients,
// examples, and the mean, 10th percentile and median of each.
nlohmann::json local_evaluation_json(const std::vector<ml::LocalEvaluation>& evaluations);
// The same from the secure sum's histograms: the spreads at the bins' midpoints, and the counts.
nlohmann::json local_histogram_json(const ml::AccuracyHistogram& histogram);

nlohmann::json round_record(const RoundReport& report, std::uint64_t completed_rounds, const RoundTraffic& traffic,
                            const std::optional<ml::EvalMetrics>& eval, double eval_seconds);

class RoundLog {
 public:
  // Throws sotto::Error when the file cannot be created.
  explicit RoundLog(const std::filesystem::path& path);
  // Returns once the line is on disk; throws sotto::Error naming the file when it cannot be.
  void append(const nlohmann::json& record) const;

 private:
  std::filesystem::path path_;
};

}  // namespace sotto::aggregator
