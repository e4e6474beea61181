// The CLI under mpirun: every rank runs the same command with the same arguments and makes the
// same Engine calls (SPMD); only rank 0 prints to stdout and writes files.
#pragma once

#include <memory>
#include <string>

#include "alspec/model/model.h"
#include "alspec/runtime/process_groups.h"

namespace alspec::cli {

// Called by main() with the full command line (hashed for the cross-rank consistency check).
void set_command_line(int argc, char** argv);
// This process's ranks, created by the first call (with `tp`); later calls must pass the same tp.
ProcessGroups& process_groups(int tp);
// nullptr before process_groups() was called.
ProcessGroups* current_process_groups();
// Whether this process is rank 0 of its job (true without mpirun).
bool primary_rank();
// Loads the model for this rank: checks that every rank got the same command line and the same
// model file (path and size), then loads the whole model or this rank's tensor-parallel shard.
// tp_chunks = 0: the default C (under mpirun: default_tp_chunks(n_head_kv); alone: 1).
std::unique_ptr<Model> load_model_for_job(const std::string& path, int tp, int tp_chunks);
// Resident and peak resident memory of this process in bytes (/proc/self/status), 0 if unknown.
size_t resident_bytes();
size_t peak_resident_bytes();

}  // namespace alspec::cli
