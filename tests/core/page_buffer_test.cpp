#include "alspec/core/page_buffer.h"

#include <gtest/gtest.h>

#include <utility>

#include "alspec/core/error.h"

namespace alspec {
namespace {

TEST(PageBuffer, ZeroFilledAndWritable) {
  PageBuffer b(size_t{5} << 20);
  ASSERT_NE(b.data(), nullptr);
  EXPECT_EQ(b.size(), size_t{5} << 20);
  for (size_t i = 0; i < b.size(); i += 4096) EXPECT_EQ(b.data()[i], 0) << i;
  b.data()[0] = 1;
  b.data()[b.size() - 1] = 2;
  EXPECT_EQ(b.data()[0] + b.data()[b.size() - 1], 3);
}

TEST(PageBuffer, MoveTransfersOwnership) {
  PageBuffer a(1 << 20, /*reserve=*/false);
  uint8_t* p = a.data();
  p[7] = 42;
  PageBuffer b(std::move(a));
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.data()[7], 42);
  PageBuffer c;
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.size(), size_t{1} << 20);
}

TEST(PageBuffer, RejectsZeroAndImpossibleSizes) {
  EXPECT_THROW(PageBuffer(0), Error);
  EXPECT_THROW(PageBuffer(~size_t{0} - 4095), Error);
}

}  // namespace
}  // namespace alspec
