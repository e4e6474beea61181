// MergeTable: lookups after growth, first insertion wins, absent pairs.
#include <gtest/gtest.h>

#include "tokenizer/merge_table.h"

namespace alspec::tokenizer_detail {
namespace {

TEST(MergeTable, FindsEveryPairAfterGrowth) {
  MergeTable table;  // starts small: forces several rehashes
  int32_t rank = 0;
  for (int32_t l = 0; l < 300; ++l) {
    for (int32_t r = 0; r < 300; r += 7) table.insert(l, r, Merge{rank++, l * 1000 + r});
  }
  EXPECT_EQ(table.size(), static_cast<size_t>(rank));
  for (int32_t l = 0; l < 300; ++l) {
    for (int32_t r = 0; r < 300; ++r) {
      const Merge* m = table.find(l, r);
      if (r % 7 == 0) {
        ASSERT_NE(m, nullptr) << l << "," << r;
        EXPECT_EQ(m->result, l * 1000 + r);
      } else {
        EXPECT_EQ(m, nullptr) << l << "," << r;
      }
    }
  }
}

TEST(MergeTable, FirstInsertionWins) {
  MergeTable table(4);
  table.insert(5, 6, Merge{0, 11});
  table.insert(5, 6, Merge{9, 12});
  table.insert(6, 5, Merge{1, 13});  // order matters: a different pair
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.find(5, 6)->rank, 0);
  EXPECT_EQ(table.find(5, 6)->result, 11);
  EXPECT_EQ(table.find(6, 5)->result, 13);
  EXPECT_EQ(table.find(0, 0), nullptr);
}

}  // namespace
}  // namespace alspec::tokenizer_detail
