#include "simulations/local_measures.h"

#include <chrono>
#include <fstream>

#include "aggregator/round_log.h"
#include "common/util/error.h"
#include "simulations/cohort_sampler.h"

namespace sotto::sim {

namespace {

using WallClock = std::chrono::steady_clock;

double since(WallClock::time_point t0) { return std::chrono::duration<double>(WallClock::now() - t0).count(); }

std::vector<TrainingJob> jobs_for(const Population& population, const std::vector<ClientIndex>& clients) {
  std::vector<TrainingJob> jobs;
  jobs.reserve(clients.size());
  for (ClientIndex c : clients) jobs.push_back({c, population.examples(c), population.local_test(c)});
  return jobs;
}

void write_clients_csv(const std::filesystem::path& csv, const std::vector<TrainingJob>& jobs,
                       const std::vector<ml::LocalEvaluation>& evaluations, const ClientStates& states) {
  std::ofstream out(csv, std::ios::trunc);
  out << "client,train_examples,held_out,rounds_trained,global_accuracy,personal_accuracy\n";
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const ClientState* state = states.find(jobs[i].client);
    out << jobs[i].client << ',' << jobs[i].examples.size() << ',' << evaluations[i].examples << ','
        << (state ? state->rounds_trained : 0) << ',' << evaluations[i].global_accuracy << ','
        << evaluations[i].personal_accuracy << '\n';
  }
  if (!out) throw Error("cannot write " + csv.string());
}

}  // namespace

nlohmann::json measure_every_client(TrainingPool& pool, const Population& population,
                                    const model::ModelParameters* global, const ml::TrainingPlan& plan,
                                    const std::filesystem::path& csv) {
  std::vector<ClientIndex> everyone(population.size());
  for (ClientIndex c = 0; c < everyone.size(); ++c) everyone[c] = c;
  std::vector<TrainingJob> jobs = jobs_for(population, everyone);
  std::erase_if(jobs, [](const TrainingJob& j) { return j.local_test.empty() || j.examples.empty(); });
  if (jobs.empty()) throw Error("no client holds examples out: raise evaluation.local_fraction");
  const auto start = WallClock::now();
  const std::vector<ml::LocalEvaluation> evaluations = pool.evaluate_clients(jobs, global, plan);
  write_clients_csv(csv, jobs, evaluations, pool.states());
  std::uint64_t never_trained = 0;
  for (const auto& j : jobs) {
    const ClientState* state = pool.states().find(j.client);
    if (!state || state->rounds_trained == 0) ++never_trained;
  }
  nlohmann::json j = aggregator::local_evaluation_json(evaluations);
  if (!global) j["global"] = nullptr;
  j["never_trained"] = never_trained;
  j["seconds"] = since(start);
  j["measured"] = "after the last round, every client on its held-out examples (clients.csv)";
  return j;
}

SimSummary run_local_only(const SimConfig& config, const ProgressFn& progress,
                          const std::function<void(const std::string&)>& warn) {
  const auto start = WallClock::now();
  ml::set_torch_threads(1);
  RunOutputs outputs(config.output_dir, to_toml(config));
  auto train = std::make_shared<const data::ImageDataset>(data::load_fashion_mnist(config.data_dir, data::Split::kTrain));
  const Population population(config, *train);
  data::write_partition_report(outputs.dir() / "partition.csv", population.shards(), train->labels);
  TrainingPool pool(config.threads, config.model, config.init_seed, train);
  SimSummary summary;
  for (std::uint64_t round = 1; round <= config.rounds; ++round) {
    const auto round_start = WallClock::now();
    const std::vector<ClientIndex> cohort = sample_cohort(config, round);
    ml::TrainingPlan plan = config.plan;
    plan.seed = mix64(config.seed ^ round);
    // A client without examples to train on or to measure on has nothing to do in the baseline.
    std::vector<TrainingJob> jobs = jobs_for(population, cohort);
    std::erase_if(jobs, [](const TrainingJob& j) { return j.examples.empty() || j.local_test.empty(); });
    const std::vector<ml::LocalEvaluation> evaluations = pool.train_alone(jobs, plan);
    RoundRow row;
    row.round = row.completed_rounds = round;
    row.cohort = static_cast<std::uint32_t>(cohort.size());
    row.participants = static_cast<std::uint32_t>(jobs.size());
    row.seconds_training = row.seconds_round = since(round_start);
    row.note_local_evaluations(evaluations);
    nlohmann::json record = {{"round", round}, {"completed_rounds", round}, {"mode", "local_only"},
                             {"cohort", cohort.size()}, {"seconds", {{"round", row.seconds_round}}}};
    if (!evaluations.empty()) record["local_evaluation"] = aggregator::local_evaluation_json(evaluations);
    outputs.record(record, row);
    summary.rounds = round;
    if (progress) progress(row, config.rounds, since(start));
  }
  ml::TrainingPlan final_plan = config.plan;
  final_plan.seed = mix64(config.seed ^ (config.rounds + 1));
  nlohmann::json extra = {{"transport", "memory"}, {"mode", "local_only"}};
  extra["local_evaluation"] = summary.local_evaluation =
      measure_every_client(pool, population, nullptr, final_plan, outputs.dir() / "clients.csv");
  summary.total_seconds = since(start);
  finish_outputs(outputs, config, summary, extra, warn);
  return summary;
}

}  // namespace sotto::sim
