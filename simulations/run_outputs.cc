#include "simulations/run_outputs.h"

#include <cstdio>

#include "common/ml/accuracy_spread.h"
#include "common/util/error.h"

namespace sotto::sim {

namespace {

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
  f.close();
  if (!f) throw Error("cannot write " + path.string());
}

std::ofstream open_truncated(const std::filesystem::path& path) {
  std::ofstream f(path, std::ios::trunc);
  if (!f) throw Error("cannot open " + path.string() + " for writing");
  return f;
}

}  // namespace

RunOutputs::RunOutputs(const std::filesystem::path& dir, const std::string& config_toml) : dir_(dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw Error("cannot create output directory " + dir_.string() + ": " + ec.message());
  write_file(dir_ / "config.toml", config_toml);
  jsonl_ = open_truncated(dir_ / "rounds.jsonl");
  csv_ = open_truncated(dir_ / "rounds.csv");
  csv_ << csv_header() << '\n';
  csv_.flush();
}

void RoundRow::note_local_evaluations(const std::vector<ml::LocalEvaluation>& evaluations) {
  std::vector<double> global, personal;
  for (const auto& e : evaluations) {
    global.push_back(e.global_accuracy);
    personal.push_back(e.personal_accuracy);
  }
  const ml::AccuracySpread g = ml::spread_of(global), p = ml::spread_of(personal);
  local_clients = static_cast<std::uint32_t>(evaluations.size());
  local_global_mean = g.mean;
  local_global_p10 = g.p10;
  local_personal_mean = p.mean;
  local_personal_p10 = p.p10;
}

std::string RunOutputs::csv_header() {
  return "round,completed_rounds,test_accuracy,test_loss,mean_train_loss,participants,cohort,bytes_up,bytes_down,"
         "seconds_sampling,seconds_training,seconds_aggregation,seconds_evaluation,seconds_round,local_clients,"
         "local_global_mean,local_global_p10,local_personal_mean,local_personal_p10";
}

std::string RunOutputs::csv_row(const RoundRow& r) {
  char buf[640];
  std::snprintf(buf, sizeof buf, "%llu,%llu,%.6f,%.6f,%.6f,%u,%u,%llu,%llu,%.3f,%.3f,%.3f,%.3f,%.3f,%u,%.6f,%.6f,%.6f,%.6f",
                static_cast<unsigned long long>(r.round), static_cast<unsigned long long>(r.completed_rounds),
                r.test_accuracy, r.test_loss, r.mean_train_loss, r.participants, r.cohort,
                static_cast<unsigned long long>(r.bytes_up), static_cast<unsigned long long>(r.bytes_down),
                r.seconds_sampling, r.seconds_training, r.seconds_aggregation, r.seconds_evaluation, r.seconds_round,
                r.local_clients, r.local_global_mean, r.local_global_p10, r.local_personal_mean, r.local_personal_p10);
  return buf;
}

void RunOutputs::record(const nlohmann::json& round_record, const RoundRow& row) {
  jsonl_ << round_record.dump() << '\n';
  jsonl_.flush();
  csv_ << csv_row(row) << '\n';
  csv_.flush();
  if (!jsonl_ || !csv_) throw Error("cannot append to rounds.jsonl / rounds.csv in " + dir_.string());
}

void RunOutputs::write_summary(const nlohmann::json& summary) {
  write_file(dir_ / "summary.json", summary.dump(2) + "\n");
}

}  // namespace sotto::sim
