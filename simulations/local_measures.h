// LocalMeasures: how sotto-sim measures personalization, where no single test set can (each client's model is its
// own): after the last round every client of the population is measured on its held-out examples
// (evaluation.local_fraction) — the final global model with its personal tensors against its personal model — and
// the figures go to clients.csv and summary.json's "local_evaluation". And the local-only baseline's run
// (personalization.local_only): the same sampling, rounds and local epochs with nothing federated.
//
// The final measure costs one evaluation per client, and with fine-tuning one fine-tuning per client: for a
// population of millions, run it with fewer clients (the held-out split is per shard).
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "simulations/population.h"
#include "simulations/simulation.h"
#include "simulations/training_pool.h"

namespace sotto::sim {

// Measures every client (see above) and writes `csv`; returns the spread for summary.json. `global` is null for
// the baseline (whose global figures are then absent). `plan` is the run's plan, its seed the final measure's.
nlohmann::json measure_every_client(TrainingPool& pool, const Population& population,
                                    const model::ModelParameters* global, const ml::TrainingPlan& plan,
                                    const std::filesystem::path& csv);

// The whole local-only run, writing the outputs run_simulation writes (rounds.jsonl lines hold the round's
// held-out figures instead of a test-set evaluation).
SimSummary run_local_only(const SimConfig& config, const ProgressFn& progress,
                          const std::function<void(const std::string&)>& warn);

}  // namespace sotto::sim
