// How the speculative kernel picks the rows of O_spec (the "predictor"), with the same token
// budget 2S either way:
// - sink-window: rows [0, S) and [L - S, L) (the reference op, docs/alspec-algorithm.md §2).
// - quest: query-aware page selection in the spirit of Quest (Tang et al., ICML 2024). The cache
//   keeps, per KV head and page of kKeyPageRows rows, the elementwise min and max of the keys
//   (8-bit, rounded outwards, one scale per page). The first page (the sink) and the last S/2
//   rows are always attended; the rest of the budget goes to the middle pages
//   with the largest upper bound of q.k summed over the query heads of the group:
//   sum_h sum_d max(q_hd min_d, q_hd max_d) = sum_d (Q+_d max_d + Q-_d min_d) with
//   Q+ = sum_h max(q_h, 0), Q- = sum_h min(q_h, 0), so one page costs 2 * head_dim multiply-adds
//   whatever the group size. Q+ and Q- are rounded to 16-bit integers once per call, so a page's
//   bound is an exact integer dot product times the page's scale: every SIMD level gets the same
//   bits.
// The check is unchanged (exact O against O_spec over all heads), so a bad selection only costs
// a miss. docs/attention.md "Predictors" has the layout and the measurements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace alspec {

enum class SpecPredictor {
  kSinkWindow,
  kQuestPages,
};

// "sink-window" or "quest"; throws Error(kInvalidArgument) naming the valid names otherwise.
SpecPredictor parse_spec_predictor(const std::string& name);
const char* spec_predictor_name(SpecPredictor p);

// Rows per key page: a whole attention tile (32 rows, two key blocks), so a selected page is one
// aligned tile for the row kernels, and the bounds cost half as many bytes as 16-row pages.
inline constexpr int64_t kKeyPageRows = 32;
// One page's bounds record, key_page_record_bytes(head_dim) bytes: int8 min[head_dim], int8
// max[head_dim], then the page's scale s (f32, little endian): min_d >= lo_d * s and
// max_d <= hi_d * s (rounded outwards; 127 * s >= the page's largest |key|). 132 bytes per page
// at head_dim 64: 1.6% of the page's f16 K and V (bf16 bounds of 16-row pages were 6.25%).
using KeyBound = uint8_t;  // a byte of a page record
inline size_t key_page_record_bytes(int head_dim) { return 2 * static_cast<size_t>(head_dim) + sizeof(float); }
inline int64_t key_pages_for_rows(int64_t rows) { return (rows + kKeyPageRows - 1) / kKeyPageRows; }
// The page predictor needs S >= this: the sink page plus the page-aligned window (< S/2 + one
// page) must leave room in 2S.
inline constexpr int kQuestMinSpecChunk = 2 * static_cast<int>(kKeyPageRows);

// Encodes the exact bounds lo[head_dim] <= hi[head_dim] of a page into its record (the definition
// of the encoding; the reference twin calls it too). Finite inputs.
void encode_key_page(const float* lo, const float* hi, int head_dim, KeyBound* record);
// The scale of a record and its value bounds (decoded: lo_d * s, hi_d * s).
float key_page_scale(const KeyBound* record, int head_dim);

// Folds the key of `row` into its page's bounds: `staging` [2][head_dim] floats holds the exact
// min and max of the page being filled (the first row of a page starts them afresh); the row that
// completes the page writes the page's record. Records of incomplete pages are not valid (the
// predictor only reads complete pages). `head_pages`: the records of one KV head.
void update_key_page_bounds(KeyBound* head_pages, float* staging, int64_t row, const float* key, int head_dim);

// The fixed rows of the page predictor for a sequence of L > 2S rows: the sink [0, sink_end)
// (page 0) and the window [window_begin, L) = the last S/2 rows; the complete pages between them,
// [sink_end, floor(window_begin / kKeyPageRows) * kKeyPageRows), compete for n_pages.
struct QuestLayout {
  int64_t sink_end = 0;
  int64_t window_begin = 0;
  int64_t n_pages = 0;  // pages to select (at most the middle pages there are)
};
QuestLayout quest_layout(int64_t L, int spec_chunk);

// Q+ and Q- of a group (q [n_rep][head_dim]) as the integers the selection uses:
// out [2][head_dim] = round(Q- * f), round(Q+ * f) with f = quest_query_limit(head_dim) / max|Q|
// (all zero when Q is zero), so that 2 * head_dim * 127 * limit fits an int32 dot product.
int quest_query_limit(int head_dim);
void quantize_group_query(const float* q, int n_rep, int head_dim, int16_t* out);

// Selects layout.n_pages middle pages of one KV head for the query heads q [n_rep][head_dim]:
// the largest bounds (integer dot of quantize_group_query with the record, times the page's
// scale, in double), ties to the lower page; writes their indices ascending into `pages`.
// Deterministic and the same at every SIMD level (integer arithmetic), independent of threads.
void select_key_pages(const float* q, int n_rep, int head_dim, const KeyBound* head_pages, const QuestLayout& layout,
                      std::vector<int64_t>& pages);
// The same into pages[0, layout.n_pages); returns how many (fewer only when there are fewer
// middle pages). Allocates nothing for head_dim <= 256 and n_pages <= 128 (the kernel's path).
int64_t select_key_pages(const float* q, int n_rep, int head_dim, const KeyBound* head_pages,
                         const QuestLayout& layout, int64_t* pages);

}  // namespace alspec
