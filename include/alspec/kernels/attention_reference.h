// Plain reference twin of the decode attention kernels: naive softmax attention in double
// precision over an explicit set of KV rows, reading the cache through load_kv_row.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "alspec/kernels/attention.h"

namespace alspec {

struct RowRange {
  int64_t begin;
  int64_t end;  // exclusive
};

// out[n_heads][head_dim] = softmax(q K^T / sqrt(head_dim)) V over the rows in `rows` (disjoint),
// for every query head. Empty row set: zeros.
void attention_reference(const AttentionShape& shape, const float* q, const KvCacheView& kv,
                         std::span<const RowRange> rows, double* out);

// The speculative rows of a sequence of length L: [0, S) and [max(S, L - S), L) clipped to L.
std::span<const RowRange> sink_window_rows(int64_t L, int spec_chunk, RowRange (&storage)[2]);

// The quest predictor's O_spec rows of KV head `group` (L > 2S), computed plainly from the
// definition: page bounds from the cache rows themselves (load_key_row), the bound
// sum_h sum_d max(q_hd min_d, q_hd max_d) in double, the top pages (ties to the lower page), and
// the sink and window of quest_layout. Ascending, one range per page.
std::vector<RowRange> quest_rows_reference(const AttentionShape& shape, const float* q, const KvCacheView& kv,
                                           int group, int64_t L, int spec_chunk);

}  // namespace alspec
