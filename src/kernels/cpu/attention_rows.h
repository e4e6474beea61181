// Internal: the row kernel shared by flash_decode and speculative_flash_decode. It folds a range of
// KV rows of one KV head into the partial states of all query heads of that group (online softmax,
// tiles of kAttentionTileRows rows), in scalar, AVX2 and AVX-512 variants.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "alspec/core/dtype.h"
#include "alspec/kernels/attention.h"

namespace alspec::attention_detail {

// Rows per online-softmax step: K and V tiles converted to float stay in L1 (2 x 32 x 128 x 4 B).
inline constexpr int kAttentionTileRows = 32;

struct GroupRows {
  const float* q;        // [n_rep][head_dim], the query heads of this KV group
  int n_rep;             // query heads per KV head
  int head_dim;
  float scale;           // 1/sqrt(head_dim)
  DType type;            // cache element type
  const uint8_t* k;      // row 0 (or block 0) of this KV head in K
  const uint8_t* v;      // row 0 of this KV head in V
  size_t row_bytes;
  // K layout (KvCacheView::k_blocks, k_first): row r of the range is K row r + k_first.
  bool k_blocks = false;
  int64_t k_first = 0;
  // Rows [end, prefetch_end) are the caller's next rows of this head (the next chunk of the same
  // task): the SIMD kernels may prefetch them. Only a hint; it never changes the results.
  int64_t prefetch_end = 0;
};

// Per-thread scratch floats (64-byte aligned): float tiles of K and V plus scores, or (fused AVX-512
// path) scores, 16 unreduced partial sums per score and one factor per head.
inline size_t group_rows_scratch_floats(int n_rep, int head_dim) {
  const size_t tile_rows = kAttentionTileRows;
  const size_t scores = static_cast<size_t>(n_rep) * tile_rows;
  return std::max(2 * tile_rows * static_cast<size_t>(head_dim) + scores, scores * 17 + static_cast<size_t>(n_rep));
}

// States of the group: acc [n_rep][head_dim], m [n_rep], l [n_rep]. Rows [begin, end) are folded in
// ascending tiles starting at `begin`.
struct GroupState {
  float* acc;
  float* m;
  float* l;
};

// K rows [r0, r0 + nt) of a range in key blocks, decoded with load_key_row into dst [nt][head_dim]:
// the (slow) path of the kernels that have no key-block code (AVX2/AVX-512 at head dims other than
// 64 and 128); the engine only uses key blocks where the fused kernels read them (prefer_key_blocks).
inline void load_key_tile(const GroupRows& g, int64_t r0, int nt, float* dst) {
  for (int t = 0; t < nt; ++t) {
    load_key_row(g.type, true, g.k, r0 + t + g.k_first, dst + static_cast<size_t>(t) * static_cast<size_t>(g.head_dim),
                 g.head_dim);
  }
}

using AccumulateRowsFn = void (*)(const GroupRows& g, int64_t begin, int64_t end, GroupState s, float* scratch);

void accumulate_rows_scalar(const GroupRows& g, int64_t begin, int64_t end, GroupState s, float* scratch);
void accumulate_rows_avx2(const GroupRows& g, int64_t begin, int64_t end, GroupState s, float* scratch);
void accumulate_rows_avx512(const GroupRows& g, int64_t begin, int64_t end, GroupState s, float* scratch);

// ---- several row ranges in one call (the page predictor) ----------------------------------------
// Rows [begin, end) of one KV head; a call folds ascending, disjoint ranges in order.
struct RowRange {
  int64_t begin;
  int64_t end;
};

// accumulate_ranges_<level>(g, r, n, s, scratch) folds ranges r[0 .. n) into s: bitwise the same
// as one accumulate_rows_<level> call per range in order (each range's tiles start at its begin,
// and the kernels carry only acc, m and l from one tile to the next), but the fused kernels keep
// their q·k / p·V pipeline and prefetch stream going from one range to the next instead of
// restarting cold: the page predictor's O_spec state (sink, selected pages, window) and its middle
// chunks (the rows between the selected pages) are each one call. g.prefetch_end applies after the
// last range.
using AccumulateRangesFn = void (*)(const GroupRows& g, const RowRange* r, int n, GroupState s, float* scratch);

void accumulate_ranges_scalar(const GroupRows& g, const RowRange* r, int n, GroupState s, float* scratch);
void accumulate_ranges_avx2(const GroupRows& g, const RowRange* r, int n, GroupState s, float* scratch);
void accumulate_ranges_avx512(const GroupRows& g, const RowRange* r, int n, GroupState s, float* scratch);

// The tiles of a range list, for the kernels' loops: tiles of kAttentionTileRows rows from each
// range's begin (the last one of a range may be shorter); empty ranges are skipped.
class TileWalk {
 public:
  TileWalk(const RowRange* r, int n, int64_t caller_prefetch_end) : r_(r), n_(n), caller_end_(caller_prefetch_end) {
    skip_empty();
    if (i_ < n_) r0_ = r_[i_].begin;
    for (int j = 0; j < n_; ++j) {
      if (r_[j].end > r_[j].begin) last_ = j;
    }
  }
  bool done() const { return i_ >= n_; }
  int64_t row() const { return r0_; }
  int rows() const { return static_cast<int>(std::min<int64_t>(kAttentionTileRows, r_[i_].end - r0_)); }
  // K rows directly after this tile that the kernel may prefetch during it: the rest of this
  // range, or after the last range the caller's next rows (GroupRows::prefetch_end); at most a tile.
  int next_rows() const {
    const int64_t after = r0_ + rows();
    const int64_t limit = i_ == last_ ? std::max(r_[i_].end, caller_end_) : r_[i_].end;
    return static_cast<int>(std::clamp<int64_t>(limit - after, 0, kAttentionTileRows));
  }
  // When this tile ends its range and a non-empty range follows: that range, whose first tile the
  // kernel requests during this one (it is not contiguous with this tile). Else nullptr.
  const RowRange* next_range() const {
    if (r0_ + rows() < r_[i_].end) return nullptr;
    int j = i_ + 1;
    while (j < n_ && r_[j].end <= r_[j].begin) ++j;
    return j < n_ ? &r_[j] : nullptr;
  }
  void advance() {
    r0_ += rows();
    if (r0_ < r_[i_].end) return;
    ++i_;
    skip_empty();
    if (i_ < n_) r0_ = r_[i_].begin;
  }

 private:
  void skip_empty() {
    while (i_ < n_ && r_[i_].end <= r_[i_].begin) ++i_;
  }
  const RowRange* r_;
  int n_;
  int64_t caller_end_;
  int i_ = 0;
  int last_ = -1;  // the last non-empty range
  int64_t r0_ = 0;
};

// ---- query-tiled prefill kernel ------------------------------------------------------------------
// Prefill asks for the attention of consecutive query tokens of one sequence; for a stretch of rows
// that several of them read in the same chunk and at the same tile offsets, the tiled kernel folds
// those rows into all their states in one pass, so each K/V element is loaded and decoded once per
// tile of queries instead of once per query. Each query's state is bitwise what
// accumulate_rows_<level> gives for the same rows (same q·k chains, same softmax step per head,
// same p·V order; only the loops around them are reordered).

// Queries per tile of the tiled kernel for the group's configuration at `level`; 0 where there is
// none (the caller then runs the per-query kernel).
int tiled_queries(SimdLevel level, const GroupRows& g);

// Max scratch floats of accumulate_rows_tiled (64-byte aligned).
inline size_t tiled_scratch_floats(int n_rep, int n_queries) {
  return static_cast<size_t>(n_queries) * static_cast<size_t>(n_rep) * (kAttentionTileRows + 1) + 64;
}

// Rows [begin, end) into the states s[0 .. n) of queries g[0 .. n), n = tiled_queries(level, g[0]).
// The queries differ only in q; (end - begin) is a multiple of kAttentionTileRows and begin + k_first
// a multiple of kKeyBlockRows.
void accumulate_rows_tiled(SimdLevel level, const GroupRows* g, int64_t begin, int64_t end, const GroupState* s,
                           float* scratch);

int tiled_queries_avx512(const GroupRows& g);
void accumulate_rows_tiled_avx512(const GroupRows* g, int64_t begin, int64_t end, const GroupState* s, float* scratch);

}  // namespace alspec::attention_detail
