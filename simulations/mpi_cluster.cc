#include "simulations/mpi_cluster.h"

#include <mpi.h>

#include <cstdlib>
#include <limits>

#include "common/util/error.h"

namespace sotto::sim {

namespace {

void check(int status, const char* call) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw Error(std::string(call) + " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

bool launched_by_mpirun() { return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK"); }

int as_count(std::size_t bytes) {
  if (bytes > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw Error("an MPI message of " + std::to_string(bytes) + " bytes is above MPI's 2 GiB count limit");
  }
  return static_cast<int>(bytes);
}

}  // namespace

MpiCluster::MpiCluster(int* argc, char*** argv) {
  if (!launched_by_mpirun()) return;
  check(MPI_Init(argc, argv), "MPI_Init");
  initialised_ = true;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
}

MpiCluster::~MpiCluster() {
  if (initialised_) MPI_Finalize();
}

void MpiCluster::broadcast(std::string& bytes) const {
  if (size_ == 1) return;
  unsigned long long length = bytes.size();
  check(MPI_Bcast(&length, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD), "MPI_Bcast");
  bytes.resize(static_cast<std::size_t>(length));
  check(MPI_Bcast(bytes.data(), as_count(bytes.size()), MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast");
}

std::vector<std::string> MpiCluster::gather(const std::string& mine) const {
  if (size_ == 1) return {mine};
  int my_length = as_count(mine.size());
  std::vector<int> lengths(is_root() ? static_cast<std::size_t>(size_) : 0);
  check(MPI_Gather(&my_length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Gather");
  std::vector<int> offsets(lengths.size());
  std::size_t total = 0;
  for (std::size_t r = 0; r < lengths.size(); ++r) {
    offsets[r] = as_count(total);
    total += static_cast<std::size_t>(lengths[r]);
  }
  std::string all(total, '\0');
  check(MPI_Gatherv(mine.data(), my_length, MPI_BYTE, all.data(), lengths.data(), offsets.data(), MPI_BYTE, 0,
                    MPI_COMM_WORLD),
        "MPI_Gatherv");
  std::vector<std::string> out;
  for (std::size_t r = 0; r < lengths.size(); ++r) {
    out.push_back(all.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(lengths[r])));
  }
  return out;
}

void MpiCluster::abort(int exit_code) const {
  if (initialised_) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::exit(exit_code);
}

}  // namespace sotto::sim
