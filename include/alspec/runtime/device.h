// A device is the unit of parallel execution: a group of worker threads, optionally pinned to a
// set of cores, with its own job queue. Two devices run side by side in `alspec` mode, so
// nothing here is global. Kernels split work into tasks whose boundaries do not depend on the
// thread count, which keeps results bitwise identical for any number of threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "alspec/core/function_ref.h"

namespace alspec {

struct DeviceOptions {
  std::string name = "cpu0";
  int threads = 1;         // >= 1; thread 0 is the caller of parallel_for (or the queue leader)
  std::vector<int> cores;  // empty: not pinned; else size must be >= 1, thread i -> cores[i % n]
};

class Device {
 public:
  explicit Device(DeviceOptions options);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const std::string& name() const { return options_.name; }
  int num_threads() const { return options_.threads; }
  const std::vector<int>& cores() const { return options_.cores; }

  // Runs fn(task, thread) for every task in [0, n_tasks) and returns when all are done.
  // The calling thread takes part as thread 0. Not re-entrant; one caller at a time.
  // The first exception thrown by a task is rethrown here after all tasks finished.
  void parallel_for(size_t n_tasks, FunctionRef<void(size_t task, int thread)> fn);
  // The same contract, scheduled for streaming kernels: thread i starts on its own contiguous
  // share of the tasks, [i*n/T, (i+1)*n/T), and runs it in order; a thread that runs out takes
  // tasks from the end of the others' shares. Each thread then reads long contiguous runs of
  // memory (which keeps prefetching useful) while the load still balances dynamically.
  void parallel_for_contiguous(size_t n_tasks, FunctionRef<void(size_t task, int thread)> fn);

  // Queues a job for this device's leader thread (pinned to cores[0] when pinned). Jobs run in
  // submission order; a job typically calls parallel_for. Exceptions reach the future.
  std::future<void> submit(std::function<void()> job);

 private:
  void worker_loop(int thread_index);
  void leader_loop();
  void run_tasks(int thread_index);
  void run_shares(int thread_index);
  void launch(size_t n_tasks, FunctionRef<void(size_t, int)>& fn, bool contiguous);
  void record_error();

  DeviceOptions options_;
  std::vector<std::thread> workers_;  // threads 1..n-1
  std::thread leader_;

  // Current parallel_for, published by bumping generation_.
  FunctionRef<void(size_t, int)>* job_ = nullptr;
  size_t job_tasks_ = 0;
  std::atomic<size_t> next_task_{0};
  std::atomic<int> busy_workers_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  // parallel_for_contiguous: per-thread task range [lo, hi) packed as lo | hi << 32; the owner
  // takes from lo, other threads from hi, both by compare-and-swap on the whole word.
  struct alignas(64) Share {
    std::atomic<uint64_t> range{0};
  };
  std::unique_ptr<Share[]> shares_;
  bool contiguous_ = false;
  std::mutex error_mu_;
  std::exception_ptr error_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::packaged_task<void()>> queue_;
  bool queue_stop_ = false;
};

// Pins the calling thread to one core; returns false when the OS refuses.
bool pin_current_thread(int core);
// Cores this process may run on (sched_getaffinity).
std::vector<int> available_cores();
// Parses "0;1" / "0,1;2,3" / "0-3" into one core list per device.
std::vector<std::vector<int>> parse_device_cores(const std::string& spec);

}  // namespace alspec
