// How the ranks of a job are arranged (the paper's TP x SP layout): N = T ranks run one model
// with T-way tensor parallelism; N = 2T ranks form two speculation groups of T ranks (ALSpec's
// two "devices"), rank r of group 0 paired with rank r of group 1. Without mpirun: one rank.
#pragma once

#include <memory>
#include <string>

#include "alspec/runtime/communicator.h"

namespace alspec {

struct ProcessGroups {
  int world_rank = 0;
  int world_size = 1;
  int tp = 1;        // ranks per group (tensor parallel degree)
  int tp_rank = 0;   // rank inside the group
  int group = 0;     // speculation group: 0, or 1 when world_size == 2 * tp
  int n_groups = 1;
  std::unique_ptr<Communicator> world;
  std::unique_ptr<Communicator> tp_comm;  // the T ranks of this group
  std::unique_ptr<Communicator> pair;     // this rank and its peer in the other group (rank = group)

  bool distributed() const { return world_size > 1; }
  bool primary() const { return world_rank == 0; }
};

// Whether this binary was built with MPI, and whether this process was started by mpirun
// (Open MPI, MPICH/PMI or PMIx environment variables).
bool mpi_compiled();
bool launched_by_mpirun();

// Initialises MPI once when launched by mpirun (no-op otherwise); finalize_mpi() at exit.
void init_mpi(int* argc, char*** argv);
void finalize_mpi();
// Stops the whole job (MPI_Abort, `why` on stderr unless empty) when MPI is running; otherwise returns.
void abort_job(const std::string& why, int exit_code);

// Splits the job into groups of `tp` ranks. Throws Error(kInvalidArgument) when the world size is
// neither tp nor 2 * tp, or tp > 1 without MPI.
std::unique_ptr<ProcessGroups> make_process_groups(int tp);

}  // namespace alspec
