// sotto-sim's throughput against a bare LibTorch loop, in one process and one run (BENCHMARKS.md, issue 4).
//
// The fixed config: 1,000 clients holding ~60 Fashion-MNIST examples each (IID), uniform cohorts of 50, 1 local
// epoch of batch 32 with SGD, the fashion_cnn model, `threads` training workers. The bare loop trains the very same
// clients (the same cohorts, examples and plan, from the initial model) on the same number of threads, each
// with one model — nothing else: no coordinator, no deltas, no aggregation, no evaluation. After a warm-up that
// pays LibTorch's first-use costs for both (a short bare loop and a short simulation), the two run interleaved,
// bare then simulation, PAIRS times, so that each pair's ratio compares runs a few seconds apart on a drifting
// machine. Printed: a Markdown table per pair (the ratios of the training phase, of whole rounds without the
// evaluation the bare loop does not do, and of whole rounds with it), the median and spread over pairs, and for
// the last pair clients per second, rounds per hour, the overhead share (round time outside LibTorch's
// forward/backward/optimizer steps and outside evaluation) and peak RSS.
//
//   usage: sotto_bench_sim [ROUNDS [THREADS [EVAL_EXAMPLES [PAIRS]]]]   (defaults 20, 2, 1000, 3)
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
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

// One simulation's seconds, summed over its rounds from rounds.jsonl.
struct SimSeconds {
  double round = 0, training_wall = 0, compute = 0, calls = 0, evaluation = 0;
};

SimSeconds run_sim(const std::vector<std::string>& overrides, const std::filesystem::path& out) {
  std::filesystem::remove_all(out);
  sim::run_simulation(sim::load_sim_config("", overrides, out));
  SimSeconds total;
  std::ifstream lines(out / "rounds.jsonl");
  for (std::string line; std::getline(lines, line);) {
    const auto s = nlohmann::json::parse(line)["seconds"];
    total.round += s["round"].get<double>();
    total.training_wall += s["training_wall"].get<double>();
    total.compute += s["training_compute"].get<double>();
    total.calls += s["training_calls"].get<double>();
    total.evaluation += s["evaluation"].get<double>();
  }
  std::filesystem::remove_all(out);
  return total;
}

// "median (min–max)" of the values.
std::string spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.3f (%.3f–%.3f)", v[v.size() / 2], v.front(), v.back());
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string rounds = argc > 1 ? argv[1] : "20";
  const std::string threads = argc > 2 ? argv[2] : "2";
  const std::string eval = argc > 3 ? argv[3] : "1000";
  const int pairs = std::max(1, argc > 4 ? std::atoi(argv[4]) : 3);
  const auto out = std::filesystem::temp_directory_path() / ("sotto-sim-bench-" + std::to_string(getpid()));
  const std::vector<std::string> overrides = {
      "population=1000",   "cohort_size=50",      "rounds=" + rounds,     "threads=" + threads,
      "plots=false",       "plan.epochs=1",       "plan.batch_size=32",   "data.partition=iid",
      "evaluation.max_examples=" + eval};
  const sim::SimConfig cfg = sim::load_sim_config("", overrides, out);
  const auto train = data::load_fashion_mnist(cfg.data_dir, data::Split::kTrain);
  const sim::Population population(cfg, train);
  const double clients = static_cast<double>(cfg.rounds) * cfg.cohort_size;

  sim::SimConfig warm = cfg;  // LibTorch's first use (thread pools, allocator, kernels), paid by both before timing
  warm.rounds = std::min<std::uint64_t>(cfg.rounds, 2);
  bare_loop(warm, train, population);
  std::vector<std::string> warm_overrides = overrides;
  warm_overrides[2] = "rounds=" + std::to_string(warm.rounds);
  run_sim(warm_overrides, out);

  std::printf("| pair | bare loop clients/s | training phase / bare | whole rounds without evaluation / bare | "
              "whole rounds with evaluation / bare |\n|---|---|---|---|---|\n");
  std::vector<double> training_ratio, rounds_ratio, with_eval_ratio;
  SimSeconds last;
  for (int p = 1; p <= pairs; ++p) {
    const double bare = bare_loop(cfg, train, population);
    last = run_sim(overrides, out);
    training_ratio.push_back(bare / last.training_wall);
    rounds_ratio.push_back(bare / (last.round - last.evaluation));
    with_eval_ratio.push_back(bare / last.round);
    std::printf("| %d | %.1f | %.3f | %.3f | %.3f |\n", p, clients / bare, training_ratio.back(), rounds_ratio.back(),
                with_eval_ratio.back());
  }
  std::printf("| median (min–max) | | %s | %s | %s |\n\n", spread(training_ratio).c_str(),
              spread(rounds_ratio).c_str(), spread(with_eval_ratio).c_str());

  const double t = static_cast<double>(cfg.threads);
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("| measure (last pair; %s rounds, cohort %u of %llu, %s threads) | value |\n|---|---|\n", rounds.c_str(),
              cfg.cohort_size, static_cast<unsigned long long>(cfg.population), threads.c_str());
  std::printf("| sotto-sim training phase, clients/s | %.1f |\n", clients / last.training_wall);
  std::printf("| sotto-sim whole rounds (evaluation on %s test images included), clients/s | %.1f |\n", eval.c_str(),
              clients / last.round);
  std::printf("| rounds per hour | %.0f |\n", 3600.0 * static_cast<double>(cfg.rounds) / last.round);
  std::printf("| share of round time in LibTorch training steps (sum / threads) | %.3f |\n",
              last.compute / t / last.round);
  std::printf("| share of round time in evaluation | %.3f |\n", last.evaluation / last.round);
  std::printf("| overhead share (the rest) | %.3f |\n",
              1.0 - last.compute / t / last.round - last.evaluation / last.round);
  std::printf("| of which inside the training call: batch assembly, loss and accuracy readout (sum / threads) | %.3f |\n",
              (last.calls - last.compute) / t / last.round);
  std::printf("| of which outside it: sampling, model load, deltas, aggregation, logging, idle workers | %.3f |\n",
              1.0 - last.calls / t / last.round - last.evaluation / last.round);
  std::printf("| peak RSS of this process (bare loops + simulations) | %.0f MiB |\n",
              static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}
