// DistributedTrainer: a round's training jobs, on this process's TrainingPool or dealt out over the MPI ranks of
// the run (mpi_cluster.h).
//
// Rank 0 broadcasts a work order — round id, plan, global model, the clients to train — and every rank trains the
// jobs at positions p with p mod ranks == rank on its own pool; each rank built the same population from the same
// config and data. Outcomes (metrics and delta, or the error) are gathered back to rank 0 and returned in job
// order. Training one client depends only on the global model, the plan, the client's id and its examples, so
// the coordinator sees exactly what one process computes: the same rounds and the same model, bit for bit. Models
// travel in the wire format's manifest and chunks (common/codec/model_stream.h).
#pragma once

#include <cstdint>
#include <vector>

#include "common/ml/training_plan.h"
#include "common/model/parameters.h"
#include "simulations/mpi_cluster.h"
#include "simulations/population.h"
#include "simulations/training_pool.h"

namespace sotto::sim {

class DistributedTrainer {
 public:
  DistributedTrainer(const MpiCluster& cluster, TrainingPool& pool, const Population& population);

  // Rank 0: trains `clients` from `global` with `plan` and hands the outcomes to `sink` in the order of
  // `clients`: in one process, each as soon as it and those before it are done (TrainingPool::train); over MPI,
  // once all ranks have reported.
  void train(const std::vector<ClientIndex>& clients, std::uint64_t round_id, const model::ModelParameters& global,
             const ml::TrainingPlan& plan, const TrainingPool::OutcomeSink& sink);
  // Rank 0, at the end of the run: the other ranks' serve() returns.
  void release_workers();
  // Ranks other than 0: trains what rank 0 sends, until release_workers(). Throws sotto::Error on a malformed
  // work order.
  void serve();

 private:
  std::vector<TrainingJob> my_share(const std::vector<ClientIndex>& clients) const;

  const MpiCluster& cluster_;
  TrainingPool& pool_;
  const Population& population_;
};

}  // namespace sotto::sim
