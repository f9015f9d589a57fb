// RunOutputs: the files a sotto-sim run leaves in output_dir — config.toml (the resolved config), partition.csv
// (per client shard: examples and per-class counts), rounds.jsonl (one aggregator::round_record per round, the
// same schema the daemon writes), rounds.csv (one row per round, for spreadsheets and gnuplot) and summary.json.
//
// Opening a run's outputs truncates the previous run's rounds.jsonl and rounds.csv in the same directory; each
// line is flushed as its round ends, so an interrupted run keeps the rounds it finished.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/ml/training_plan.h"

namespace sotto::sim {

struct RoundRow {
  std::uint64_t round = 0;
  std::uint64_t completed_rounds = 0;
  double test_accuracy = 0;
  double test_loss = 0;
  double mean_train_loss = 0;
  std::uint32_t participants = 0;  // valid updates aggregated
  std::uint32_t cohort = 0;        // clients that received the task
  std::uint64_t bytes_up = 0;
  std::uint64_t bytes_down = 0;
  double seconds_sampling = 0;  // sampling and check-in
  double seconds_training = 0;
  double seconds_aggregation = 0;
  double seconds_evaluation = 0;
  double seconds_round = 0;
  // The held-out accuracy the round's clients measured (evaluation.local_fraction; 0 clients: none).
  std::uint32_t local_clients = 0;
  double local_global_mean = 0, local_global_p10 = 0;
  double local_personal_mean = 0, local_personal_p10 = 0;
  void note_local_evaluations(const std::vector<ml::LocalEvaluation>& evaluations);
};

class RunOutputs {
 public:
  // Creates `dir` and writes config.toml; throws sotto::Error naming the path when it cannot.
  RunOutputs(const std::filesystem::path& dir, const std::string& config_toml);

  const std::filesystem::path& dir() const { return dir_; }
  void record(const nlohmann::json& round_record, const RoundRow& row);
  void write_summary(const nlohmann::json& summary);

  static std::string csv_header();
  static std::string csv_row(const RoundRow& row);

 private:
  std::filesystem::path dir_;
  std::ofstream jsonl_;
  std::ofstream csv_;
};

}  // namespace sotto::sim
