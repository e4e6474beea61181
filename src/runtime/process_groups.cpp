#include "alspec/runtime/process_groups.h"

#include <cstdlib>
#include <string>

#include "alspec/core/error.h"
#ifdef ALSPEC_HAVE_MPI
#include "mpi/mpi_backend.h"
#endif

namespace alspec {

bool mpi_compiled() {
#ifdef ALSPEC_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"}) {
    if (std::getenv(v) != nullptr) return true;
  }
  return false;
}

void init_mpi(int* argc, char*** argv) {
#ifdef ALSPEC_HAVE_MPI
  if (launched_by_mpirun()) mpi::init(argc, argv);
#else
  (void)argc;
  (void)argv;
#endif
}

void finalize_mpi() {
#ifdef ALSPEC_HAVE_MPI
  mpi::finalize();
#endif
}

void abort_job(const std::string& why, int exit_code) {
#ifdef ALSPEC_HAVE_MPI
  if (mpi::initialized()) mpi::abort_world(why, exit_code);
#else
  (void)why;
  (void)exit_code;
#endif
}

std::unique_ptr<ProcessGroups> make_process_groups(int tp) {
  if (tp < 1) throw_invalid_argument("--tp must be >= 1, got " + std::to_string(tp));
  auto g = std::make_unique<ProcessGroups>();
#ifdef ALSPEC_HAVE_MPI
  if (mpi::initialized()) {
    g->world = mpi::world();
    g->world_rank = g->world->rank();
    g->world_size = g->world->size();
  }
#endif
  if (!g->world) {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
      const char* n = std::getenv(v);
      if (n != nullptr && std::string(n) != "1" && !mpi_compiled()) {
        throw_invalid_argument(std::string("mpirun started ") + n +
                               " ranks, but this alspec build has no MPI (install libopenmpi-dev and rebuild)");
      }
    }
    if (tp > 1) {
      throw_invalid_argument("--tp " + std::to_string(tp) + " needs " + std::to_string(tp) + " MPI ranks: run under mpirun -np " +
                             std::to_string(tp) + (mpi_compiled() ? "" : " (and build alspec with MPI: this build has none)"));
    }
    g->world = make_single_communicator();
  }
  const int n = g->world_size;
  if (n != tp && n != 2 * tp) {
    throw_invalid_argument("mpirun -np " + std::to_string(n) + " with --tp " + std::to_string(tp) +
                           ": the number of ranks must be T (tensor parallel) or 2T (two ALSpec speculation groups)");
  }
  g->tp = tp;
  g->n_groups = n / tp;
  g->group = g->world_rank / tp;
  g->tp_rank = g->world_rank % tp;
#ifdef ALSPEC_HAVE_MPI
  if (mpi::initialized()) {
    g->tp_comm = mpi::split(*g->world, g->group, g->tp_rank);
    g->pair = mpi::split(*g->world, g->tp_rank, g->group);
  }
#endif
  if (!g->tp_comm) {
    g->tp_comm = make_single_communicator();
    g->pair = make_single_communicator();
  }
  return g;
}

}  // namespace alspec
