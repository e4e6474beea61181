// Communicator over MPI: errors return (MPI_ERRORS_RETURN) and become alspec::Error naming the
// call; calls come from one thread at a time (MPI_THREAD_SERIALIZED: the server calls engines
// from its HTTP threads).
#ifdef ALSPEC_HAVE_MPI
// The C API only (Open MPI and MPICH would otherwise pull in their deprecated C++ bindings).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <cstdio>
#include <iostream>
#include <vector>

#include "alspec/core/error.h"
#include "mpi_backend.h"

namespace alspec::mpi {
namespace {

bool g_initialized_here = false;

[[noreturn]] void fail(const char* call, int rc) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(ErrorKind::kRuntime, std::string(call) + " failed: " + std::string(msg, static_cast<size_t>(len)));
}

void check(const char* call, int rc) {
  if (rc != MPI_SUCCESS) fail(call, rc);
}

int to_int(size_t n, const char* call) {
  if (n > static_cast<size_t>(INT32_MAX)) throw Error(ErrorKind::kRuntime, std::string(call) + ": message too large");
  return static_cast<int>(n);
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, bool owned) : comm_(comm), owned_(owned) {
    check("MPI_Comm_set_errhandler", MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    check("MPI_Comm_rank", MPI_Comm_rank(comm_, &rank_));
    check("MPI_Comm_size", MPI_Comm_size(comm_, &size_));
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned_ && !finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* transport() const override { return "mpi"; }
  MPI_Comm comm() const { return comm_; }
  [[noreturn]] void abort(const std::string& why, int exit_code) override { abort_world(why, exit_code); }

 protected:
  void do_allgather(std::span<const std::byte> mine, std::span<std::byte> all) override {
    const int n = to_int(mine.size(), "MPI_Allgather");
    check("MPI_Allgather", MPI_Allgather(mine.data(), n, MPI_BYTE, all.data(), n, MPI_BYTE, comm_));
  }
  void do_allgatherv(std::span<const std::byte> mine, std::span<const int> byte_counts, std::span<std::byte> all) override {
    std::vector<int> displs(byte_counts.size());
    int off = 0;
    for (size_t r = 0; r < byte_counts.size(); ++r) {
      displs[r] = off;
      off += byte_counts[r];
    }
    check("MPI_Allgatherv", MPI_Allgatherv(mine.data(), to_int(mine.size(), "MPI_Allgatherv"), MPI_BYTE, all.data(),
                                           byte_counts.data(), displs.data(), MPI_BYTE, comm_));
  }
  void do_send(int dest, int tag, std::span<const std::byte> data) override {
    check("MPI_Send", MPI_Send(data.data(), to_int(data.size(), "MPI_Send"), MPI_BYTE, dest, tag, comm_));
  }
  void do_recv(int source, int tag, std::span<std::byte> out) override {
    MPI_Status st;
    check("MPI_Recv", MPI_Recv(out.data(), to_int(out.size(), "MPI_Recv"), MPI_BYTE, source, tag, comm_, &st));
    int got = 0;
    MPI_Get_count(&st, MPI_BYTE, &got);
    if (static_cast<size_t>(got) != out.size()) {
      throw Error(ErrorKind::kRuntime, "MPI_Recv: message of " + std::to_string(got) + " bytes from rank " +
                                           std::to_string(source) + ", expected " + std::to_string(out.size()));
    }
  }
  void do_sendrecv(int peer, int tag, std::span<const std::byte> data, std::span<std::byte> out) override {
    MPI_Status st;
    check("MPI_Sendrecv", MPI_Sendrecv(data.data(), to_int(data.size(), "MPI_Sendrecv"), MPI_BYTE, peer, tag, out.data(),
                                       to_int(out.size(), "MPI_Sendrecv"), MPI_BYTE, peer, tag, comm_, &st));
  }
  void do_barrier() override { check("MPI_Barrier", MPI_Barrier(comm_)); }

 private:
  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0, size_ = 1;
};

}  // namespace

void init(int* argc, char*** argv) {
  int done = 0;
  MPI_Initialized(&done);
  if (done) return;
  int provided = 0;
  check("MPI_Init_thread", MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided));
  g_initialized_here = true;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

bool initialized() {
  int done = 0, finalized = 0;
  MPI_Initialized(&done);
  MPI_Finalized(&finalized);
  return done && !finalized;
}

void finalize() {
  if (g_initialized_here && initialized()) MPI_Finalize();
}

void abort_world(const std::string& why, int exit_code) {
  std::fflush(stdout);
  if (!why.empty()) std::cerr << "alspec: stopping the MPI job: " << why << "\n";
  std::cerr << std::flush;
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

std::unique_ptr<Communicator> world() { return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, false); }

std::unique_ptr<Communicator> split(Communicator& parent, int color, int key) {
  auto* p = dynamic_cast<MpiCommunicator*>(&parent);
  if (p == nullptr) throw Error(ErrorKind::kRuntime, "MPI_Comm_split: parent is not an MPI communicator");
  MPI_Comm out = MPI_COMM_NULL;
  check("MPI_Comm_split", MPI_Comm_split(p->comm(), color, key, &out));
  return std::make_unique<MpiCommunicator>(out, true);
}

}  // namespace alspec::mpi
#endif  // ALSPEC_HAVE_MPI
