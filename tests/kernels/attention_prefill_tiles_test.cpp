// The query-tiled prefill path of flash_decode (a batch of consecutive queries of one sequence)
// against one flash_decode call per query: bitwise equal for every shape, length, tile remainder,
// spec chunk, KV type and key layout (tiled or not, the per-query arithmetic is the same).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "alspec/kernels/attention.h"
#include "kernels/attention_test_util.h"

namespace alspec {
namespace {

using attention_test::random_query;
using attention_test::TestCache;

// Queries at positions [p0, p0 + n) of one cache, once as one batch, once one call each.
void expect_batch_equals_single_calls(Device& dev, const AttentionShape& shape, const TestCache& cache, int64_t p0,
                                      int n, int S, const std::string& what) {
  const size_t hd = static_cast<size_t>(shape.n_heads) * static_cast<size_t>(shape.head_dim);
  std::vector<std::vector<float>> q(static_cast<size_t>(n));
  std::vector<float> out_batch(static_cast<size_t>(n) * hd), out_single(static_cast<size_t>(n) * hd);
  std::vector<DecodeQuery> batch(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    q[static_cast<size_t>(i)] = random_query(shape.n_heads, shape.head_dim, 1000 + static_cast<uint32_t>(i), 2.0f);
    batch[static_cast<size_t>(i)] = {q[static_cast<size_t>(i)].data(), cache.view(), p0 + i,
                                     &out_batch[static_cast<size_t>(i) * hd]};
  }
  flash_decode(dev, shape, batch, S);
  for (int i = 0; i < n; ++i) {
    const DecodeQuery one{q[static_cast<size_t>(i)].data(), cache.view(), p0 + i, &out_single[static_cast<size_t>(i) * hd]};
    flash_decode(dev, shape, std::span<const DecodeQuery>(&one, 1), S);
  }
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(std::memcmp(&out_batch[static_cast<size_t>(i) * hd], &out_single[static_cast<size_t>(i) * hd],
                          hd * sizeof(float)),
              0)
        << what << " p0 " << p0 << " n " << n << " S " << S << " query " << i;
  }
}

TEST(AttentionPrefillTiles, BatchOfConsecutiveQueriesEqualsSingleCallsBitwise) {
  for (int threads : {1, 2}) {
    Device dev({.name = "t", .threads = threads, .cores = {}});
    for (const DType type : {DType::F16, DType::F32, DType::BF16}) {
      for (const bool blocks : {true, false}) {
        const TestCache cache(type, 2, 64, 2300, 7, blocks);
        for (const int gqa : {7, 1, 2, 3, 4, 5, 6, 8}) {
          const AttentionShape shape{2 * gqa, 2, 64};
          const std::string what = std::string(dtype_name(type)) + (blocks ? " blocks" : " rows") + " gqa " +
                                   std::to_string(gqa) + " threads " + std::to_string(threads);
          if (gqa == 7 && type == DType::F16) {
            // Tile remainders, chunk borders (1024 rows from S) and S not a multiple of the blocks.
            for (const int S : {0, 128, 24}) {
              for (const int64_t p0 : {int64_t{0}, int64_t{100}, int64_t{1100}, int64_t{1140}}) {
                for (const int n : {2, 3, 4, 5, 7, 9, 64}) {
                  expect_batch_equals_single_calls(dev, shape, cache, p0, n, S, what);
                }
              }
            }
            continue;
          }
          if (threads == 2) continue;
          expect_batch_equals_single_calls(dev, shape, cache, 1150, 13, 128, what);
          expect_batch_equals_single_calls(dev, shape, cache, 900, 11, 0, what);
        }
      }
    }
  }
}

TEST(AttentionPrefillTiles, OtherTypesAndHeadDimsKeepThePerQueryPath) {
  Device dev({.name = "t", .threads = 2, .cores = {}});
  const TestCache q8(DType::Q8_0, 2, 64, 1300, 8, false);
  expect_batch_equals_single_calls(dev, {14, 2, 64}, q8, 1100, 9, 128, "q8_0");
  const TestCache wide(DType::F16, 2, 128, 1300, 9, true);
  expect_batch_equals_single_calls(dev, {8, 2, 128}, wide, 1100, 9, 128, "f16 d128");
  const TestCache many(DType::F16, 1, 64, 1300, 10, true);
  expect_batch_equals_single_calls(dev, {12, 1, 64}, many, 1100, 9, 128, "f16 gqa 12");
}

}  // namespace
}  // namespace alspec
