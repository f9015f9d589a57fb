// MpiCluster: the processes of one sotto-sim run. Started by Open MPI's mpirun, every rank runs the same binary
// with the same config; started plainly, the run is a cluster of one and MPI is never initialised (no singleton
// start-up cost, no MPI runtime needed for a laptop run).
//
// The cluster moves opaque byte strings only: rank 0 broadcasts, and gathers one string from every rank. What the
// strings mean is distributed_training.h's business.
#pragma once

#include <string>
#include <vector>

namespace sotto::sim {

class MpiCluster {
 public:
  // A cluster of one process; MPI is not touched.
  MpiCluster() = default;
  // Initialises MPI when mpirun started this process (Open MPI's OMPI_COMM_WORLD_SIZE, or PMIX_RANK, is set).
  MpiCluster(int* argc, char*** argv);
  ~MpiCluster();  // MPI_Finalize, when initialised
  MpiCluster(const MpiCluster&) = delete;
  MpiCluster& operator=(const MpiCluster&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }

  // Rank 0's `bytes` replace every other rank's. Throws sotto::Error on an MPI failure.
  void broadcast(std::string& bytes) const;
  // At rank 0: every rank's string, by rank. Elsewhere: empty. Throws sotto::Error on an MPI failure.
  std::vector<std::string> gather(const std::string& mine) const;
  // Ends every rank of the job at once (after an error on one of them, the others would wait forever).
  [[noreturn]] void abort(int exit_code) const;

 private:
  bool initialised_ = false;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace sotto::sim
