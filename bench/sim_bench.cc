// sotto-sim's throughput against a bare LibTorch loop, in one process and one run (BENCHMARKS.md, issue 4).
//
// The fixed config: 1,000 clients holding ~60 Fashion-MNIST examples each (IID), uniform cohorts of 50, 1 local
// epoch of batch 32 with SGD, the fashion_cnn model, `threads` training workers. The bare loop trains the very same
// clients (the same cohorts, examples and plan, from the initial model) on the same number of threads, each
// with one model — nothing else: no coordinator, no deltas, no aggregation, no evaluation. It runs before and after
// the simulation, to bracket the machine's drift. Printed: a Markdown table of clients trained per second, rounds
// per hour, the sim/bare ratio, the overhead share (round time outside LibTorch's forward/backward/optimizer steps
// and outside evaluation) and peak RSS.
//
//   usage: sotto_bench_sim [ROUNDS [THREADS [EVAL_EXAMPLES]]]   (defaults 20, 2, 1000)
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/data/image_dataset.h"
#include "common/ml/image_model.h"
#include "simulations/cohort_sampler.h"
#include "simulations/population.h"
#include "simulations/sim_config.h"
#include "simulations/simulation.h"

using namespace sotto;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The bare loop: every round's cohort, trained on `threads` threads from the initial model; returns wall seconds.
double bare_loop(const sim::SimConfig& cfg, const data::ImageDataset& train, const sim::Population& population) {
  std::vector<std::vector<sim::ClientIndex>> cohorts;
  for (std::uint64_t r = 1; r <= cfg.rounds; ++r) cohorts.push_back(sim::sample_cohort(cfg, r));
  std::vector<std::unique_ptr<ml::ImageModel>> models;
  for (std::uint32_t w = 0; w < cfg.threads; ++w) models.push_back(ml::make_model(cfg.model, cfg.init_seed));
  const model::ModelParameters initial = models[0]->parameters();
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t r = 0; r < cohorts.size(); ++r) {
    std::atomic<std::size_t> next{0};
    auto work = [&](ml::ImageModel& model) {
      ml::set_torch_threads(1);
      for (std::size_t i = next++; i < cohorts[r].size(); i = next++) {
        ml::TrainingPlan plan = cfg.plan;
        plan.seed = ml::client_training_seed(r + 1, sim::Population::client_id(cohorts[r][i]));
        model.load(initial);
        model.train(train, population.examples(cohorts[r][i]), plan);
      }
    };
    std::vector<std::thread> workers;
    for (auto& m : models) workers.emplace_back(work, std::ref(*m));
    for (auto& w : workers) w.join();
  }
  return seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string rounds = argc > 1 ? argv[1] : "20";
  const std::string threads = argc > 2 ? argv[2] : "2";
  const std::string eval = argc > 3 ? argv[3] : "1000";
  const auto out = std::filesystem::temp_directory_path() / ("sotto-sim-bench-" + std::to_string(getpid()));
  const sim::SimConfig cfg = sim::load_sim_config(
      "", {"population=1000", "cohort_size=50", "rounds=" + rounds, "threads=" + threads, "plots=false",
           "plan.epochs=1", "plan.batch_size=32", "data.partition=iid", "evaluation.max_examples=" + eval},
      out);
  const auto train = data::load_fashion_mnist(cfg.data_dir, data::Split::kTrain);
  const sim::Population population(cfg, train);
  const double clients = static_cast<double>(cfg.rounds) * cfg.cohort_size;

  const double bare_before = bare_loop(cfg, train, population);
  sim::run_simulation(cfg);
  const double bare_after = bare_loop(cfg, train, population);

  double round_s = 0, train_wall = 0, compute = 0, calls = 0, evaluation = 0;
  std::ifstream lines(out / "rounds.jsonl");
  for (std::string line; std::getline(lines, line);) {
    const auto s = nlohmann::json::parse(line)["seconds"];
    round_s += s["round"].get<double>();
    train_wall += s["training_wall"].get<double>();
    compute += s["training_compute"].get<double>();
    calls += s["training_calls"].get<double>();
    evaluation += s["evaluation"].get<double>();
  }
  const double bare = (bare_before + bare_after) / 2;
  const double t = static_cast<double>(cfg.threads);
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);

  std::printf("| measure (%s rounds, cohort %u of %llu, %s threads) | value |\n|---|---|\n", rounds.c_str(),
              cfg.cohort_size, static_cast<unsigned long long>(cfg.population), threads.c_str());
  std::printf("| bare LibTorch loop, clients/s (before / after the simulation) | %.1f / %.1f |\n",
              clients / bare_before, clients / bare_after);
  std::printf("| sotto-sim training phase, clients/s | %.1f |\n", clients / train_wall);
  std::printf("| sotto-sim whole rounds (evaluation on %s test images included), clients/s | %.1f |\n", eval.c_str(),
              clients / round_s);
  std::printf("| training phase / bare loop | %.3f |\n", bare / train_wall);
  std::printf("| whole rounds / bare loop | %.3f |\n", bare / round_s);
  std::printf("| rounds per hour | %.0f |\n", 3600.0 * static_cast<double>(cfg.rounds) / round_s);
  std::printf("| share of round time in LibTorch training steps (sum / threads) | %.3f |\n", compute / t / round_s);
  std::printf("| share of round time in evaluation | %.3f |\n", evaluation / round_s);
  std::printf("| overhead share (the rest) | %.3f |\n", 1.0 - compute / t / round_s - evaluation / round_s);
  std::printf("| of which inside the training call: batch assembly, loss and accuracy readout (sum / threads) | %.3f |\n",
              (calls - compute) / t / round_s);
  std::printf("| of which outside it: sampling, model load, deltas, aggregation, logging, idle workers | %.3f |\n",
              1.0 - calls / t / round_s - evaluation / round_s);
  std::printf("| peak RSS of this process (bare loops + simulation) | %.0f MiB |\n",
              static_cast<double>(ru.ru_maxrss) / 1024.0);
  std::filesystem::remove_all(out);
  return 0;
}
