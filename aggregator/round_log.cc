#include "aggregator/round_log.h"

#include <fstream>

#include "common/ml/accuracy_spread.h"
#include "common/util/durable_append.h"
#include "common/util/error.h"

namespace sotto::aggregator {

using secagg::Step;

namespace {

nlohmann::json spread_json(const ml::AccuracySpread& s) {
  return {{"mean", s.mean}, {"p10", s.p10}, {"median", s.median}};
}

}  // namespace

nlohmann::json local_evaluation_json(const std::vector<ml::LocalEvaluation>& evaluations) {
  std::vector<double> global, personal;
  std::uint64_t examples = 0;
  for (const auto& e : evaluations) {
    global.push_back(e.global_accuracy);
    personal.push_back(e.personal_accuracy);
    examples += e.examples;
  }
  return {{"clients", evaluations.size()},
          {"examples", examples},
          {"global", spread_json(ml::spread_of(global))},
          {"personal", spread_json(ml::spread_of(personal))}};
}

nlohmann::json local_histogram_json(const ml::AccuracyHistogram& h) {
  return {{"clients", h.devices()},
          {"source", "secure_sum"},
          {"bins", h.bins},
          {"global", spread_json(ml::spread_of_histogram(h.global))},
          {"personal", spread_json(ml::spread_of_histogram(h.personal))},
          {"histogram", {{"global", h.global}, {"personal", h.personal}}}};
}

nlohmann::json round_record(const RoundReport& r, std::uint64_t completed_rounds, const RoundTraffic& traffic,
                            const std::optional<ml::EvalMetrics>& eval, double eval_seconds) {
  nlohmann::json j;
  j["schema_version"] = kRoundLogSchemaVersion;
  j["round"] = r.round_id;
  j["status"] = r.completed ? "completed" : "abandoned";
  if (!r.completed) j["abandon_reason"] = r.abandon_reason;
  j["completed_rounds"] = completed_rounds;
  j["cohort"] = r.cohort;
  j["survivors"] = r.survivors;
  j["examples"] = r.examples;
  j["participants"] = r.participants;
  j["dropped"] = nlohmann::json::array();
  for (const auto& [client, reason] : r.dropped) j["dropped"].push_back({{"client", client}, {"reason", reason}});
  if (eval) {
    j["test_accuracy"] = eval->accuracy;
    j["test_loss"] = eval->loss;
    j["test_examples"] = eval->num_examples;
  }
  if (r.survivors > 0 && !r.privacy) {  // under distributed DP the devices send no metrics in the clear
    j["mean_train_loss"] = r.mean_train_loss;
    j["mean_train_accuracy"] = r.mean_train_accuracy;
  }
  if (!r.local_evaluations.empty()) j["local_evaluation"] = local_evaluation_json(r.local_evaluations);
  if (r.local_histogram) {
    j["local_evaluation"] = local_histogram_json(*r.local_histogram);
    if (r.local_histogram_noise_stddev > 0) j["local_evaluation"]["noise_stddev"] = r.local_histogram_noise_stddev;
  }
  if (!r.local_histogram_problem.empty()) j["local_evaluation"] = {{"error", r.local_histogram_problem}};
  j["seconds"] = {{"checkin", r.checkin_seconds},
                  {"training", r.training_seconds},
                  {"aggregation", r.aggregation_seconds},
                  {"slowest_client_training", r.slowest_train_seconds},
                  {"evaluation", eval_seconds}};
  if (r.secagg) {
    const auto& s = *r.secagg;
    // The per-update work of a secure round beside the strategy's "aggregation" (round_report.h).
    j["seconds"]["secure_summing"] = s.summing_seconds;
    j["seconds"]["secure_unmasking"] = s.unmasking_seconds;
    j["seconds"]["secure_decoding"] = s.decoding_seconds;
    j["secagg"] = {{"n", s.n},
                   {"k", s.k},
                   {"t", s.t},
                   {"survivors", {{"advertised", s.completed[Step::kAdvertiseKeys]},
                                  {"shared", s.completed[Step::kShareKeys]},
                                  {"masked", s.completed[Step::kMaskedInput]},
                                  {"unmasked", s.completed[Step::kUnmasking]}}}};
    for (Step step : secagg::kSteps) {
      const std::string key(secagg::step_key(step));
      j["secagg"]["seconds"][key] = s.seconds[step];
      j["secagg"]["bytes_in"][key] = traffic.secagg_in[step];
      j["secagg"]["bytes_out"][key] = traffic.secagg_out[step];
    }
    if (!s.convicted.empty()) {
      auto& convicted = j["secagg"]["convicted"] = nlohmann::json::array();
      for (const auto& c : s.convicted) {
        convicted.push_back({{"client", c.client},
                             {"offence", c.offence},
                             {"accused_by", c.accused_by},
                             {"input_counted", c.input_counted}});
      }
    }
  }
  if (r.privacy) {
    const auto& p = *r.privacy;
    j["privacy"] = {{"mode", p.mode},
                    {"clip_norm", p.clip_norm},
                    {"noise_multiplier", p.noise_multiplier},
                    {"delta", p.delta},
                    {"epsilon", p.epsilon_spent},
                    {"order", p.order},
                    {"epsilon_released", p.epsilon_released},
                    {"epsilon_against_aggregator_applies", p.mode != "central"},
                    {"sampling_rate", p.sampling_rate},
                    {"skipped_draws", p.skipped_draws},
                    {"charged", p.charged},
                    {"sampling", p.sampling},
                    {"bits", p.bits},
                    {"clients", p.clients},
                    {"min_survivors", p.min_survivors},
                    {"honest", p.honest},
                    {"scale", p.scale},
                    {"l2_bound", p.l2_bound},
                    {"local_stddev", p.local_stddev},
                    {"dimension", p.dimension}};
    if (p.count_weight > 0) {
      auto& a = j["privacy"]["adaptive_clipping"] = {{"count_weight", p.count_weight},
                                                     {"mechanism_clip_norm", p.mechanism_clip_norm},
                                                     {"next_clip_norm", p.next_clip_norm}};
      a["unclipped_fraction"] = p.unclipped_fraction ? nlohmann::json(*p.unclipped_fraction) : nlohmann::json();
    }
    if (p.bound.bounded()) j["privacy"]["contribution_bound"] = {{"linf", p.bound.linf}, {"l1", p.bound.l1}};
    if (p.histogram_bins > 0) {
      j["privacy"]["accuracy_histogram"] = {{"bins", p.histogram_bins},
                                            {"noise_multiplier", p.histogram_noise_multiplier},
                                            {"local_stddev", p.histogram_local_stddev}};
    }
  }
  if (r.privacy && r.privacy->mode == "central") j["privacy"]["epsilon"] = nullptr;  // it sees the sum unnoised
  if (!r.clipped.empty()) j["clipped"] = r.clipped;
  if (!r.examples_capped.empty()) j["examples_capped"] = r.examples_capped;
  if (!r.secure_sum.empty()) j["secure_sum"] = r.secure_sum;
  if (!r.private_sum.empty()) j["private_sum"] = r.private_sum;
  if (!r.secure_sum.empty() || !r.private_sum.empty()) j["contributors"] = r.participants;
  j["bytes_in"] = traffic.bytes_in;
  j["bytes_out"] = traffic.bytes_out;
  return j;
}

RoundLog::RoundLog(const std::filesystem::path& path) : path_(path) {
  if (!std::ofstream(path, std::ios::app)) throw Error("cannot open round log " + path.string() + " for appending");
}

void RoundLog::append(const nlohmann::json& record) const {
  util::append_line_durably(path_, record.dump());
}

}  // namespace sotto::aggregator
