// Simulation: the engine of sotto-sim. Many virtual clients in one process, driven through the very
// aggregator::RoundCoordinator that sotto-aggregator runs, over an in-memory transport: hellos, the task, updates
// and disconnects are direct calls, the coordinator's actions are read back, and no bytes are serialised.
//
// A round: sample the cohort (cohort_sampler.h); say hello for each sampled client in client order (connection id
// = client index); take the SendTask action (uniform sampling: the cohort target is reached by the last hello;
// poisson: the check-in window is closed with on_tick); train the cohort on the TrainingPool; hand the updates to
// on_update in client order (a client whose training failed disconnects instead), so results do not depend on
// thread timing; on RoundClosed evaluate the new global model, write the round's lines and call
// on_round_recorded. Time passed to the coordinator is the wall clock, plus a jump over the check-in window.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "simulations/mpi_cluster.h"
#include "simulations/run_outputs.h"
#include "simulations/sim_config.h"

namespace sotto::sim {

struct SimSummary {
  std::uint64_t rounds = 0;  // completed rounds
  double final_accuracy = 0;
  double final_loss = 0;
  double best_accuracy = 0;
  std::uint64_t best_round = 0;
  double total_seconds = 0;
  std::uint64_t empty_draws = 0;  // poisson draws that sampled nobody (skipped)
  std::uint64_t small_draws = 0;  // poisson draws below the cohort minimum (3 with secure aggregation; skipped)
  std::string stopped_by_budget;  // why the run ended before rounds.total: the next round would overspend; or empty
  nlohmann::json local_evaluation;  // every client measured after the last round (local_measures.h); or null
  nlohmann::json to_json() const;
  // Takes in a recorded round: completed rounds, final and best accuracy.
  void note_round(const RoundRow& row);
};

// The end of a run, whichever transport: summary.json (the summary, the experiment's headline settings and
// `extra`) and, when config.plots, the plots (a failure to draw goes to `warn`).
void finish_outputs(RunOutputs& outputs, const SimConfig& config, SimSummary& summary,
                    const nlohmann::json& extra, const std::function<void(const std::string&)>& warn);

// Called after each round is recorded: the row just written, the total number of rounds, seconds since start.
using ProgressFn = std::function<void(const RoundRow& row, std::uint64_t total_rounds, double elapsed_seconds)>;

// Runs the whole simulation and writes every output file. Throws sotto::Error on bad data or config. Plot
// warnings (gnuplot missing) go to `warn` when given; plots never fail a run.
// Under MPI (`cluster` of several ranks) this is rank 0's part: it runs the coordinator, evaluates and writes the
// outputs, and each round's training is dealt out over the ranks (distributed_training.h), with the same results.
SimSummary run_simulation(const SimConfig& config, const ProgressFn& progress = {},
                          const std::function<void(const std::string&)>& warn = {},
                          const MpiCluster& cluster = MpiCluster());

// The other ranks' part: load the same data and population, then train what rank 0 sends until the run ends.
void run_simulation_worker(const SimConfig& config, const MpiCluster& cluster);

}  // namespace sotto::sim
