// The defaults every front end resolves through the same two functions.
#include <gtest/gtest.h>

#include "alspec/spec/engine.h"

namespace alspec {
namespace {

TEST(EngineDefaults, DeviceCountFollowsTheMode) {
  EXPECT_EQ(default_device_count(AttentionMode::kAlspec), 2);
  for (AttentionMode m : {AttentionMode::kExact, AttentionMode::kStatic, AttentionMode::kSimulate}) {
    EXPECT_EQ(default_device_count(m), 1);
  }
}

TEST(EngineDefaults, CoresAreSharedEvenlyWithAtLeastOneThreadEach) {
  EXPECT_EQ(default_threads_per_device(2, 1), 2);
  EXPECT_EQ(default_threads_per_device(2, 2), 1);
  EXPECT_EQ(default_threads_per_device(8, 3), 2);  // the remainder stays idle rather than oversubscribing
  EXPECT_EQ(default_threads_per_device(1, 4), 1);  // oversubscribed: still one thread per device
  EXPECT_EQ(default_threads_per_device(0, 1), 1);  // no affinity information
}

}  // namespace
}  // namespace alspec
