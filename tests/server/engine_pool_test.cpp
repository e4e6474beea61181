#include "alspec/server/engine_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "alspec/server/api_error.h"
#include "server/server_test_model.h"

namespace alspec::server {
namespace {

EngineOptions one_thread() {
  EngineOptions o;
  o.threads = 1;
  o.devices = 1;
  return o;
}

TEST(EnginePool, QueueBoundGives503AndSlotsAreReused) {
  EnginePool pool(testing::stories260k(), one_thread(), /*n_slots=*/1, /*max_queue=*/1);
  EXPECT_EQ(pool.ctx_size(), 512);
  auto a = pool.acquire();
  EXPECT_EQ(pool.busy(), 1);
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    auto b = pool.acquire();  // waits in the queue
    got = true;
  });
  for (int i = 0; i < 2000 && pool.queued() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(pool.queued(), 1);
  try {
    pool.acquire();
    ADD_FAILURE() << "third request should not fit";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 503);
    EXPECT_EQ(e.code(), "queue_full");
  }
  a.reset();
  waiter.join();
  EXPECT_TRUE(got);
  EXPECT_EQ(pool.busy(), 0);
  pool.close();
  try {
    pool.acquire();
    ADD_FAILURE() << "closed pool";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), "shutting_down");
  }
}

TEST(EnginePool, EngineFollowsTheRequestedSpeculationSettings) {
  EnginePool pool(testing::stories260k(), one_thread(), 1, 0);
  auto lease = pool.acquire();
  SpecConfig exact;
  Engine& e1 = lease->engine(exact);
  EXPECT_EQ(e1.mode(), AttentionMode::kExact);
  EXPECT_EQ(&lease->engine(exact), &e1);  // unchanged settings: same engine
  SpecConfig sim;
  sim.mode = AttentionMode::kSimulate;
  sim.lambda = 0.2f;
  sim.spec_chunk = 16;
  Engine& e2 = lease->engine(sim);
  EXPECT_EQ(e2.mode(), AttentionMode::kSimulate);
  EXPECT_FLOAT_EQ(e2.options().spec.lambda, 0.2f);
  EXPECT_EQ(e2.spec_chunk(), 16);
  SpecConfig two;
  two.mode = AttentionMode::kAlspec;
  Engine& e3 = lease->engine(two);
  EXPECT_EQ(e3.n_devices(), 2);
  EXPECT_EQ(lease->engine(exact).n_devices(), 1);
}

}  // namespace
}  // namespace alspec::server
