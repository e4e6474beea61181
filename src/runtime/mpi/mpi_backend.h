// Internal: the MPI transport behind process_groups.cpp (compiled only with ALSPEC_HAVE_MPI).
#pragma once

#include <memory>
#include <string>

#include "alspec/runtime/communicator.h"

namespace alspec::mpi {

void init(int* argc, char*** argv);
bool initialized();
void finalize();
[[noreturn]] void abort_world(const std::string& why, int exit_code);
std::unique_ptr<Communicator> world();
// MPI_Comm_split of `parent` (an MPI communicator): ranks with the same color form a group,
// ordered by key.
std::unique_ptr<Communicator> split(Communicator& parent, int color, int key);

}  // namespace alspec::mpi
