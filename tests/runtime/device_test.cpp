#include "alspec/runtime/device.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

#include "alspec/core/error.h"

namespace alspec {
namespace {

TEST(Device, ParallelForRunsEveryTaskOnce) {
  for (int threads : {1, 2, 3, 4}) {
    Device dev({.name = "t", .threads = threads, .cores = {}});
    for (size_t n : {0u, 1u, 7u, 1000u}) {
      std::vector<std::atomic<int>> hits(n);
      dev.parallel_for(n, [&](size_t t, int th) {
        EXPECT_GE(th, 0);
        EXPECT_LT(th, threads);
        hits[t].fetch_add(1);
      });
      for (size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << "task " << i;
    }
  }
}

TEST(Device, ParallelForContiguousRunsEveryTaskOnce) {
  for (int threads : {1, 2, 3, 4}) {
    Device dev({.name = "t", .threads = threads, .cores = {}});
    for (size_t n : {0u, 1u, 2u, 7u, 1000u}) {
      std::vector<std::atomic<int>> hits(n);
      dev.parallel_for_contiguous(n, [&](size_t t, int th) {
        EXPECT_GE(th, 0);
        EXPECT_LT(th, threads);
        hits[t].fetch_add(1);
      });
      for (size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << "task " << i;
    }
  }
}

TEST(Device, ParallelForContiguousBalancesWhenOneThreadIsSlow) {
  Device dev({.name = "t", .threads = 2, .cores = {}});
  std::vector<std::atomic<int>> hits(64);
  std::atomic<int> by_thread0{0};
  dev.parallel_for_contiguous(hits.size(), [&](size_t t, int th) {
    if (th == 0) {
      by_thread0.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // thread 1 must steal from share 0
    }
    hits[t].fetch_add(1);
  });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  EXPECT_LT(by_thread0.load(), 32);
}

TEST(Device, ParallelForContiguousExceptionPropagates) {
  Device dev({.name = "t", .threads = 3, .cores = {}});
  EXPECT_THROW(dev.parallel_for_contiguous(100, [&](size_t t, int) {
    if (t == 37) throw std::runtime_error("boom");
  }), std::runtime_error);
  std::atomic<int> n{0};
  dev.parallel_for_contiguous(10, [&](size_t, int) { n++; });
  EXPECT_EQ(n.load(), 10);
}

TEST(Device, ManyShortLoops) {
  Device dev({.name = "t", .threads = 2, .cores = {}});
  std::atomic<long> sum{0};
  for (int rep = 0; rep < 2000; ++rep) {
    dev.parallel_for(4, [&](size_t t, int) { sum.fetch_add(static_cast<long>(t)); });
  }
  EXPECT_EQ(sum.load(), 2000L * 6);
}

TEST(Device, TaskExceptionPropagates) {
  Device dev({.name = "t", .threads = 2, .cores = {}});
  EXPECT_THROW(dev.parallel_for(100, [&](size_t t, int) {
    if (t == 37) throw std::runtime_error("boom");
  }), std::runtime_error);
  // The device stays usable afterwards.
  std::atomic<int> n{0};
  dev.parallel_for(10, [&](size_t, int) { n++; });
  EXPECT_EQ(n.load(), 10);
}

TEST(Device, SubmitRunsJobsInOrderOnLeader) {
  Device dev({.name = "t", .threads = 2, .cores = {}});
  std::vector<int> order;
  std::vector<std::future<void>> futs;
  for (int i = 0; i < 5; ++i) futs.push_back(dev.submit([&, i] { order.push_back(i); }));
  for (auto& f : futs) f.get();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  auto f = dev.submit([&] {
    std::atomic<int> n{0};
    dev.parallel_for(8, [&](size_t, int) { n++; });
    if (n != 8) throw std::runtime_error("bad");
  });
  EXPECT_NO_THROW(f.get());
  auto g = dev.submit([] { throw std::runtime_error("job failed"); });
  EXPECT_THROW(g.get(), std::runtime_error);
}

// Cores the calling thread may run on, as the OS reports them.
std::vector<int> thread_affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cores;
  if (pthread_getaffinity_np(pthread_self(), sizeof(set), &set) != 0) return cores;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cores.push_back(c);
  }
  return cores;
}

// DeviceOptions::cores promises thread i -> cores[i % n], the leader (thread 0) on cores[0].
TEST(Device, PinnedToAvailableCore) {
  const auto avail = available_cores();
  ASSERT_FALSE(avail.empty());
  const std::vector<int> cores = {avail[0], avail[avail.size() > 1 ? 1 : 0]};
  Device dev({.name = "pinned", .threads = 2, .cores = cores});
  std::vector<std::vector<int>> seen(2);
  std::atomic<int> arrived{0};
  dev.submit([&] {
       // Two tasks that wait for each other: each of the two threads runs exactly one.
       dev.parallel_for(2, [&](size_t, int thread) {
         seen[static_cast<size_t>(thread)] = thread_affinity();
         arrived.fetch_add(1);
         const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
         while (arrived.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
       });
     }).get();
  ASSERT_EQ(arrived.load(), 2);
  EXPECT_EQ(seen[0], std::vector<int>{cores[0]});
  EXPECT_EQ(seen[1], std::vector<int>{cores[1]});
}

TEST(Device, ParseDeviceCores) {
  EXPECT_EQ(parse_device_cores("0;1"), (std::vector<std::vector<int>>{{0}, {1}}));
  EXPECT_EQ(parse_device_cores("0,1;2-4"), (std::vector<std::vector<int>>{{0, 1}, {2, 3, 4}}));
  EXPECT_THROW(parse_device_cores("a;1"), Error);
  EXPECT_THROW(parse_device_cores(";"), Error);
  EXPECT_THROW(parse_device_cores("3-1"), Error);
}

TEST(Device, RejectsZeroThreads) { EXPECT_THROW(Device({.name = "z", .threads = 0, .cores = {}}), Error); }

}  // namespace
}  // namespace alspec
