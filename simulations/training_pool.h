// TrainingPool: trains a round's cohort on `threads` workers. Each worker owns one ImageModel, reused for every
// client it trains — the only models in the process besides the evaluator's. Each job is a device's plain round
// up to its upload, run by the same round::Participant a device runs: the participant takes the task and asks for
// training with its own seed; the worker loads the global model and trains on the client's own examples, as
// client::ImageTrainer does; the participant checks local − global and hands it over as its upload.
//
// When the plan personalizes or clients hold examples out, each client's state (client_state.h) lives here, made on
// its first round: its training goes through fit_with_state, and the pool also trains the local-only baseline and
// measures every client after the last round.
//
// Results come back in the order of the jobs, whatever order the workers finished in, so a run does not depend
// on thread timing. Training failures (an empty shard, a diverged model) are returned as the client's error,
// which the engine turns into a dropped client.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "aggregator/round_coordinator.h"
#include "common/data/image_dataset.h"
#include "common/ml/image_model.h"
#include "common/round/messages.h"
#include "simulations/client_state.h"
#include "simulations/population.h"

namespace sotto::sim {

struct TrainingJob {
  ClientIndex client = 0;
  std::span<const std::uint32_t> examples;
  std::span<const std::uint32_t> local_test;  // held out (evaluation.local_fraction)
};

// The coordinator's view of a participant's upload.
aggregator::UpdateSummary summary_of(const round::out::Upload& upload);
aggregator::ClientUpdate to_client_update(round::out::Upload upload);

struct TrainingOutcome {
  ClientIndex client = 0;
  std::optional<aggregator::ClientUpdate> update;  // empty when training failed
  std::string error;
  double compute_seconds = 0;  // in LibTorch's forward, backward and optimizer steps
};

class TrainingPool {
 public:
  TrainingPool(std::uint32_t threads, const ml::ModelSpec& model, std::uint64_t init_seed,
               std::shared_ptr<const data::ImageDataset> train);

  using OutcomeSink = std::function<void(TrainingOutcome&&)>;

  // Trains every job from `global` with `plan` (plan.seed is the round's seed; each client mixes in its id) and
  // hands each outcome to `sink` on the calling thread, in job order, as soon as it and every job before it are
  // done: between the calling thread's own jobs and while the last ones train, so that the caller's work on the
  // outcomes overlaps training. When `sink` throws, nothing more is handed over and the exception is rethrown
  // once the workers have stopped.
  void train(const std::vector<TrainingJob>& jobs, std::uint64_t round_id, const model::ModelParameters& global,
             const ml::TrainingPlan& plan, const OutcomeSink& sink);
  // The same, returning the outcomes in job order.
  std::vector<TrainingOutcome> train(const std::vector<TrainingJob>& jobs, std::uint64_t round_id,
                                     const model::ModelParameters& global, const ml::TrainingPlan& plan);

  // Evaluates `global` on the first max_examples examples of `test` (all when 0) on every worker: ranges of whole
  // evaluation batches, combined in order, so the result is bit for bit what one model's evaluate() gives.
  ml::EvalMetrics evaluate(const model::ModelParameters& global, const data::ImageDataset& test,
                           std::uint64_t max_examples);

  // The local-only baseline's round (client_state.h's train_alone): each job's client trains its own model with
  // `plan` (its seed mixed with the client's id). Evaluations in job order.
  std::vector<ml::LocalEvaluation> train_alone(const std::vector<TrainingJob>& jobs, const ml::TrainingPlan& plan);
  // After the last round: every job's client on its held-out examples (client_state.h's evaluate_client; `global`
  // null for the baseline). Evaluations in job order.
  std::vector<ml::LocalEvaluation> evaluate_clients(const std::vector<TrainingJob>& jobs,
                                                    const model::ModelParameters* global,
                                                    const ml::TrainingPlan& plan);
  const ClientStates& states() const { return states_; }

 private:
  // Runs task(model, i) for every i in [0, count) on up to one thread per model, each worker claiming the next
  // index (the calling thread is the first worker), after prepare(model) once per worker when given. When
  // `finished` is given, it is called on the calling thread with 0, 1, ..., count - 1 in turn, each as soon as
  // that task and all before it are done. Rethrows the first exception a worker or `finished` threw, once all
  // workers have stopped.
  void run_workers(std::size_t count, const std::function<void(ml::ImageModel&)>& prepare,
                   const std::function<void(ml::ImageModel&, std::size_t)>& task,
                   const std::function<void(std::size_t)>& finished = {});

  // The states of the jobs' clients, made now (before workers start) when `create`; else those that exist, and
  // `untrained_` (read only) for the others.
  std::vector<ClientState*> states_of(const std::vector<TrainingJob>& jobs, bool create = true);
  ClientData data_of(const TrainingJob& job) const { return {*train_, job.examples, job.local_test}; }
  // Runs `measure` for every job on the workers, with the job's client's data, state and seeded plan; `trains`:
  // whether it changes the states (else it must only read them).
  using ClientMeasure = std::function<ml::LocalEvaluation(ml::ImageModel&, const ClientData&, const ml::TrainingPlan&,
                                                          ClientState&)>;
  std::vector<ml::LocalEvaluation> measure_each(const std::vector<TrainingJob>& jobs, const ml::TrainingPlan& plan,
                                                bool trains, const ClientMeasure& measure);

  std::vector<std::unique_ptr<ml::ImageModel>> models_;
  std::shared_ptr<const data::ImageDataset> train_;
  model::ModelParameters initial_;  // what a client that has not trained holds
  ClientStates states_;
  ClientState untrained_;  // what a client never trained holds, for measuring it
};

}  // namespace sotto::sim
