#include "alspec/runtime/device.h"

#include <pthread.h>
#include <sched.h>

#include <sstream>

#include "alspec/core/error.h"
#include "runtime/spin_wait.h"

namespace alspec {

bool pin_current_thread(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (core < 0 || core >= CPU_SETSIZE) return false;
  CPU_SET(core, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

std::vector<int> available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cores;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cores.push_back(c);
    }
  }
  return cores;
}

std::vector<std::vector<int>> parse_device_cores(const std::string& spec) {
  std::vector<std::vector<int>> devices;
  std::stringstream ss(spec);
  std::string dev;
  while (std::getline(ss, dev, ';')) {
    std::vector<int> cores;
    std::stringstream ds(dev);
    std::string item;
    while (std::getline(ds, item, ',')) {
      if (item.empty()) continue;
      try {
        const auto dash = item.find('-');
        size_t pos = 0;
        if (dash == std::string::npos) {
          cores.push_back(std::stoi(item, &pos));
          if (pos != item.size()) throw std::invalid_argument(item);
        } else {
          const int lo = std::stoi(item.substr(0, dash));
          const int hi = std::stoi(item.substr(dash + 1));
          if (lo > hi) throw std::invalid_argument(item);
          for (int c = lo; c <= hi; ++c) cores.push_back(c);
        }
      } catch (const std::exception&) {
        throw_invalid_argument("--device-cores: cannot parse '" + item + "' in '" + spec + "'");
      }
    }
    if (cores.empty()) throw_invalid_argument("--device-cores: empty core set in '" + spec + "'");
    devices.push_back(std::move(cores));
  }
  if (devices.empty()) throw_invalid_argument("--device-cores: no devices in '" + spec + "'");
  return devices;
}

Device::Device(DeviceOptions options) : options_(std::move(options)) {
  if (options_.threads < 1) throw_invalid_argument("device " + options_.name + ": threads must be >= 1");
  shares_ = std::make_unique<Share[]>(static_cast<size_t>(options_.threads));
  for (int i = 1; i < options_.threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  leader_ = std::thread([this] { leader_loop(); });
}

Device::~Device() {
  {
    std::lock_guard lock(queue_mu_);
    queue_stop_ = true;
  }
  queue_cv_.notify_all();
  leader_.join();
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void Device::record_error() {
  std::lock_guard lock(error_mu_);
  if (!error_) error_ = std::current_exception();
  next_task_.store(job_tasks_, std::memory_order_relaxed);  // stop handing out tasks
  for (int i = 0; i < options_.threads; ++i) shares_[static_cast<size_t>(i)].range.store(0, std::memory_order_relaxed);
}

void Device::run_tasks(int thread_index) {
  if (contiguous_) {
    run_shares(thread_index);
    return;
  }
  for (;;) {
    const size_t t = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (t >= job_tasks_) break;
    try {
      (*job_)(t, thread_index);
    } catch (...) {
      record_error();
    }
  }
}

namespace {

constexpr uint64_t pack_range(uint64_t lo, uint64_t hi) { return lo | (hi << 32); }

// Takes the first (front) or the last task of a share; false when it is empty.
bool take_task(std::atomic<uint64_t>& range, bool front, size_t& task) {
  uint64_t v = range.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t lo = v & 0xFFFFFFFFu, hi = v >> 32;
    if (lo >= hi) return false;
    const uint64_t next = front ? pack_range(lo + 1, hi) : pack_range(lo, hi - 1);
    if (range.compare_exchange_weak(v, next, std::memory_order_relaxed)) {
      task = static_cast<size_t>(front ? lo : hi - 1);
      return true;
    }
  }
}

}  // namespace

void Device::run_shares(int thread_index) {
  const int n = options_.threads;
  // Own share first, front to back; then the others' shares from their ends, nearest first.
  for (int k = 0; k < n; ++k) {
    const int owner = (thread_index + k) % n;
    auto& range = shares_[static_cast<size_t>(owner)].range;
    size_t t = 0;
    while (take_task(range, k == 0, t)) {
      try {
        (*job_)(t, thread_index);
      } catch (...) {
        record_error();
      }
    }
  }
}

void Device::worker_loop(int thread_index) {
  if (!options_.cores.empty()) pin_current_thread(options_.cores[thread_index % options_.cores.size()]);
  uint64_t seen = 0;
  for (;;) {
    seen = detail::spin_then_wait(generation_, [&](uint64_t g) { return g != seen; });
    if (stop_.load(std::memory_order_acquire)) return;
    run_tasks(thread_index);
    if (busy_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) busy_workers_.notify_all();
  }
}

void Device::parallel_for(size_t n_tasks, FunctionRef<void(size_t, int)> fn) { launch(n_tasks, fn, false); }

void Device::parallel_for_contiguous(size_t n_tasks, FunctionRef<void(size_t, int)> fn) {
  launch(n_tasks, fn, n_tasks <= 0xFFFFFFFFu);  // shares hold 32-bit task indices
}

void Device::launch(size_t n_tasks, FunctionRef<void(size_t, int)>& fn, bool contiguous) {
  if (n_tasks == 0) return;
  if (workers_.empty() || n_tasks == 1) {
    for (size_t t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  job_ = &fn;
  job_tasks_ = n_tasks;
  error_ = nullptr;
  contiguous_ = contiguous;
  next_task_.store(0, std::memory_order_relaxed);
  if (contiguous) {
    const auto n = static_cast<uint64_t>(n_tasks), threads = static_cast<uint64_t>(options_.threads);
    for (uint64_t i = 0; i < threads; ++i) {
      shares_[i].range.store(pack_range(i * n / threads, (i + 1) * n / threads), std::memory_order_relaxed);
    }
  }
  busy_workers_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  // The release below publishes job_, contiguous_ and the shares to the workers.
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  run_tasks(0);
  detail::spin_then_wait(busy_workers_, [](int busy) { return busy == 0; });
  job_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

std::future<void> Device::submit(std::function<void()> job) {
  std::packaged_task<void()> task(std::move(job));
  auto fut = task.get_future();
  {
    std::lock_guard lock(queue_mu_);
    if (queue_stop_) throw Error(ErrorKind::kRuntime, "device " + options_.name + " is shut down");
    queue_.push_back(std::move(task));
  }
  queue_cv_.notify_one();
  return fut;
}

void Device::leader_loop() {
  if (!options_.cores.empty()) pin_current_thread(options_.cores[0]);
  for (;;) {
    std::packaged_task<void()> task;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return queue_stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace alspec
