// accumulate_ranges_<level> (several row ranges in one call: the page predictor's O_spec rows and
// the middle chunks around its pages) against one accumulate_rows_<level> call per range: bitwise
// the same states at every level the host has, for every KV type, key layout, head dim and GQA
// ratio, with aligned and unaligned ranges, partial tiles, empty ranges and a caller look-ahead.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "alspec/kernels/attention.h"
#include "alspec/kernels/attention_state.h"
#include "alspec/kernels/cpu_features.h"
#include "kernels/attention_test_util.h"
#include "kernels/cpu/attention_rows.h"

namespace alspec {
namespace {

using attention_detail::AccumulateRangesFn;
using attention_detail::AccumulateRowsFn;
using attention_detail::GroupRows;
using attention_detail::GroupState;
using attention_detail::RowRange;
using attention_test::random_query;
using attention_test::TestCache;

struct Level {
  const char* name;
  SimdLevel level;
  AccumulateRowsFn rows;
  AccumulateRangesFn ranges;
};

// The states of the group's heads after folding `r` (acc, m, l of each head, in one buffer).
std::vector<float> fold(const GroupRows& g, const std::vector<RowRange>& r, bool one_call, const Level& lv) {
  const size_t d = static_cast<size_t>(g.head_dim);
  const size_t n = static_cast<size_t>(g.n_rep);
  std::vector<float> st(n * d + 2 * n);
  GroupState s{st.data(), st.data() + n * d, st.data() + n * d + n};
  for (size_t h = 0; h < n; ++h) reset_attention_state({s.acc + h * d, s.m + h, s.l + h}, g.head_dim);
  std::vector<float> scratch(std::max(attention_detail::group_rows_scratch_floats(g.n_rep, g.head_dim),
                                      attention_detail::tiled_scratch_floats(g.n_rep, 4)) +
                             16);
  float* scratch64 = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t{63});
  if (one_call) {
    lv.ranges(g, r.data(), static_cast<int>(r.size()), s, scratch64);
  } else {
    for (const RowRange& x : r) lv.rows(g, x.begin, x.end, s, scratch64);
  }
  return st;
}

TEST(AttentionRanges, OneCallIsBitwiseOneCallPerRange) {
  std::vector<Level> levels = {{"scalar", SimdLevel::kScalar, attention_detail::accumulate_rows_scalar,
                                attention_detail::accumulate_ranges_scalar}};
  if (detected_simd_level() >= SimdLevel::kAvx2) {
    levels.push_back({"avx2", SimdLevel::kAvx2, attention_detail::accumulate_rows_avx2,
                      attention_detail::accumulate_ranges_avx2});
  }
  if (detected_simd_level() >= SimdLevel::kAvx512) {
    levels.push_back({"avx512", SimdLevel::kAvx512, attention_detail::accumulate_rows_avx512,
                      attention_detail::accumulate_ranges_avx512});
  }
  // Page-predictor shapes (sink, pages, unaligned window; gaps around pages with an unaligned end)
  // and odd ones (unaligned starts, short and empty ranges, adjacent ranges).
  const std::vector<std::vector<RowRange>> lists = {
      {{0, 32}, {96, 160}, {320, 352}, {449, 513}},
      {{32, 96}, {128, 320}, {352, 481}},
      {{0, 32}, {32, 64}, {200, 200}, {416, 450}},
      {{5, 21}, {40, 41}, {64, 160}, {170, 300}},
      {{64, 96}},
      {{0, 512}},
  };
  const DType types[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0};
  int checked = 0;
  for (const Level& lv : levels) {
    for (DType type : types) {
      for (bool blocks : {false, true}) {
        if (blocks && !key_blocks_supported(type)) continue;
        for (int d : {64, 128, 32}) {
          for (int n_rep : {1, 4, 7, 8}) {
            const TestCache cache(type, 1, d, 544, 7u + static_cast<uint32_t>(d), blocks);
            const std::vector<float> q = random_query(n_rep, d, 11u + static_cast<uint32_t>(n_rep), 2.0f);
            const KvCacheView kv = cache.view();
            GroupRows g{q.data(), n_rep, d, 1.0f / std::sqrt(static_cast<float>(d)), type, kv.k_row(0, 0),
                        kv.v_row(0, 0), kv.row_bytes()};
            g.k_blocks = blocks;
            for (int64_t look_ahead : {int64_t{0}, int64_t{540}}) {
              g.prefetch_end = look_ahead;
              for (size_t i = 0; i < lists.size(); ++i) {
                const std::vector<float> one = fold(g, lists[i], true, lv);
                const std::vector<float> many = fold(g, lists[i], false, lv);
                ASSERT_EQ(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)), 0)
                    << lv.name << " " << dtype_name(type) << (blocks ? " blocks" : " rows") << " d " << d << " gqa "
                    << n_rep << " list " << i << " look-ahead " << look_ahead;
                ++checked;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace alspec
