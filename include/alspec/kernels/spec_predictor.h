// How the speculative kernel picks the rows of O_spec (the "predictor"), with the same token
// budget 2S either way:
// - sink-window: rows [0, S) and [L - S, L) (the reference op, docs/alspec-algorithm.md §2).
// - quest: query-aware page selection in the spirit of Quest (Tang et al., ICML 2024). The cache
//   keeps, per KV head and page of kKeyPageRows rows, the elementwise min and max of the keys. The
//   first page (the sink) and the last rows (about S/2, page aligned) are always attended; the rest
//   of the budget goes to the middle pages with the largest upper bound of q.k summed over the
//   query heads of the group: sum_h sum_d max(q_hd min_d, q_hd max_d)
//   = sum_d (Q+_d max_d + Q-_d min_d) with Q+ = sum_h max(q_h, 0), Q- = sum_h min(q_h, 0), so
//   one page costs 2 * head_dim multiply-adds whatever the group size.
// The check is unchanged (exact O against O_spec over all heads), so a bad selection only costs
// a miss. docs/attention.md "Predictors" has the layout and the measurements.
#pragma once

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

// Rows per key page (a multiple of the key block, so pages never split a block).
inline constexpr int64_t kKeyPageRows = 16;
// Values of one page's bounds: min[head_dim] then max[head_dim], stored as bf16 rounded outwards
// (min down, max up), so they still bound the keys: 256 bytes per page at head_dim 64, 6.25% of
// the page's f16 K and V (f32 bounds were 12.5%, measured +10-26% spec time; docs/attention.md).
inline int64_t key_page_floats(int head_dim) { return 2 * static_cast<int64_t>(head_dim); }
using KeyBound = uint16_t;  // bf16 bits
// x rounded to bf16 toward -inf (down) or +inf (up); finite x.
KeyBound bf16_round_down(float x);
KeyBound bf16_round_up(float x);
inline int64_t key_pages_for_rows(int64_t rows) { return (rows + kKeyPageRows - 1) / kKeyPageRows; }
// The page predictor needs S >= this: the sink page plus the page-aligned window (< S/2 + one
// page) must leave room in 2S.
inline constexpr int kQuestMinSpecChunk = 2 * static_cast<int>(kKeyPageRows);

// Folds the key of `row` into its page's bounds (the first row of a page starts them afresh).
// `head_pages`: the bounds of one KV head, [pages][2][head_dim].
void update_key_page_bounds(KeyBound* head_pages, int64_t row, const float* key, int head_dim);

// The fixed rows of the page predictor for a sequence of L > 2S rows: the sink [0, sink_end)
// and the window [window_begin, L); the middle pages [sink_end, window_begin) / kKeyPageRows
// compete for n_pages.
struct QuestLayout {
  int64_t sink_end = 0;
  int64_t window_begin = 0;
  int64_t n_pages = 0;  // pages to select (at most the middle pages there are)
};
QuestLayout quest_layout(int64_t L, int spec_chunk);

// Selects layout.n_pages middle pages of one KV head for the query heads q [n_rep][head_dim]:
// the largest bounds, ties to the lower page; writes their indices ascending into `pages`.
// Deterministic (fixed summation order), independent of threads. `scores` is scratch.
void select_key_pages(const float* q, int n_rep, int head_dim, const KeyBound* head_pages, const QuestLayout& layout,
                      std::vector<float>& scores, std::vector<int64_t>& pages);

}  // namespace alspec
