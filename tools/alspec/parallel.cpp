#include "parallel.h"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "alspec/core/error.h"

namespace alspec::cli {
namespace {

std::vector<std::string>& command_line() {
  static std::vector<std::string> args;
  return args;
}

std::unique_ptr<ProcessGroups>& groups_slot() {
  static std::unique_ptr<ProcessGroups> g;
  return g;
}

// FNV-1a, 64 bit.
uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

size_t status_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line)) {
    if (line.rfind(k, 0) == 0) return static_cast<size_t>(std::stoull(line.substr(k.size()))) * 1024;
  }
  return 0;
}

}  // namespace

void set_command_line(int argc, char** argv) {
  command_line().assign(argv, argv + argc);
}

ProcessGroups& process_groups(int tp) {
  auto& g = groups_slot();
  if (!g) {
    g = make_process_groups(tp);
  } else if (g->tp != tp) {
    throw_invalid_argument("--tp " + std::to_string(tp) + " differs from the job's " + std::to_string(g->tp));
  }
  return *g;
}

ProcessGroups* current_process_groups() { return groups_slot().get(); }

bool primary_rank() {
  const auto* g = current_process_groups();
  if (g != nullptr) return g->primary();
  const char* r = std::getenv("OMPI_COMM_WORLD_RANK");
  if (r == nullptr) r = std::getenv("PMIX_RANK");
  if (r == nullptr) r = std::getenv("PMI_RANK");
  return r == nullptr || std::string(r) == "0";
}

std::unique_ptr<Model> load_model_for_job(const std::string& path, int tp, int tp_chunks) {
  ProcessGroups& g = process_groups(tp);
  if (g.distributed()) {
    // Same command line, same model file on every rank, before any work.
    struct stat st {};
    const uint64_t size = ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    uint64_t h = fnv1a(path + "\n" + std::to_string(size));
    for (size_t i = 1; i < command_line().size(); ++i) h = fnv1a(command_line()[i] + "\n", h);
    const uint64_t mine[2] = {h, size};
    std::vector<uint64_t> all(2 * static_cast<size_t>(g.world_size));
    g.world->allgather(CommOp::kControl, std::span<const uint64_t>(mine, 2), all);
    std::string diff;
    for (int r = 0; r < g.world_size; ++r) {
      if (all[2 * static_cast<size_t>(r)] != all[0]) {
        diff += (diff.empty() ? "" : ", ") + std::to_string(r) + " (model size " +
                std::to_string(all[2 * static_cast<size_t>(r) + 1]) + " bytes)";
      }
    }
    if (!diff.empty()) {
      throw_invalid_argument("ranks disagree on the model file or the options: rank(s) " + diff +
                             " differ from rank 0 (model " + std::to_string(all[1]) +
                             " bytes); every rank must run the same command on the same model file");
    }
  }
  Shard shard;
  shard.rank = g.tp_rank;
  shard.count = g.tp;
  shard.chunks = tp_chunks > 0 ? tp_chunks : (launched_by_mpirun() ? 0 : 1);
  return Model::load(path, shard);
}

size_t resident_bytes() { return status_kib("VmRSS"); }
size_t peak_resident_bytes() { return status_kib("VmHWM"); }

}  // namespace alspec::cli
