// Plain reference twin of the decode attention kernels: naive softmax attention in double
// precision over an explicit set of KV rows, reading the cache through load_kv_row.
#pragma once

#include <cstdint>
#include <span>

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

}  // namespace alspec
