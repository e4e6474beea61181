// Decode attention on the CPU: plain flash decode and the ALSpec speculative flash decode
// ("Attention-Level Speculation", Cai et al., ICML 2025; the specification is
// docs/alspec-algorithm.md §2-4, the design and its measurements docs/attention.md).
//
// Decisions:
// - L = pos + 1 (no rounding to 32); scores are scaled by 1/sqrt(head_dim); the speculative chunk
//   size S is a runtime parameter. Sink = rows [0, S), window = rows [L - S, L).
// - KV cache per layer is head-major: K and V each [n_kv_heads][capacity][head_dim] in the cache
//   element type (F32, F16, BF16 or Q8_0; Q8_0 needs head_dim % 32 == 0). GQA: query head h reads
//   KV head h / (n_heads / n_kv_heads); all query heads of a KV group are processed together so each
//   K/V row is read once per group.
// - One partition plan shared by both kernels, fixed and independent of the thread count:
//   if S > 0 and L > 2S: the sink+window state first, then the middle [S, L - S) in chunks of
//   kAttentionChunkRows rows, merged in order after it; otherwise chunks of kAttentionChunkRows
//   rows over [0, L) merged in order. Hence flash_decode(..., S) gives bitwise the O_exact of
//   speculative_flash_decode(..., S, ...), and any thread count gives bitwise the same results.
// - Predictors (spec_predictor.h): sink-window as above, or quest, whose O_spec rows are the sink
//   page, the selected middle pages and the window; its middle chunks then cover
//   [sink_end, window_begin) minus the selected pages of each KV head, so every row is still read
//   once. O_spec is published after all O_spec rows are folded, before any middle chunk.
// - L <= 2S: sink and window cover the whole context, O_spec = O_exact; the result says
//   accept = true and full_coverage = true so callers count those checks apart (as trivial, not hits).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "alspec/core/dtype.h"
#include "alspec/core/function_ref.h"
#include "alspec/kernels/cpu_features.h"
#include "alspec/kernels/spec_predictor.h"
#include "alspec/runtime/device.h"

namespace alspec {

// Rows per split-K chunk (one task, one state, one merge). A constant (never derived from the
// thread count) so results are reproducible. 1024 rows of f16 K+V at head_dim 128 are 512 KiB:
// the kernel's prefetch stream and its q·k / p·V pipeline restart at every chunk, and each chunk
// costs a state reset and a merge; at 256 rows that was ~8% of the time at long contexts
// (measured, docs/attention.md). Still 8 tasks per KV head at 8K context for the threads to share.
inline constexpr int64_t kAttentionChunkRows = 1024;

// K rows are stored one after another ("rows"), or for F32/F16/BF16 in key blocks: groups of
// kKeyBlockRows rows with the dimensions outermost, [head_dim][kKeyBlockRows] elements per block.
// The same bytes per row either way; with blocks q·k yields 16 scores per vertical FMA chain and
// needs no horizontal reductions (docs/attention.md). V rows are always one after another.
inline constexpr int kKeyBlockRows = 16;

// One layer's KV cache as the kernels read it. Non-owning.
struct KvCacheView {
  DType type = DType::F16;
  const void* k = nullptr;  // [n_kv_heads][capacity] rows of row_bytes() bytes
  const void* v = nullptr;
  int n_kv_heads = 0;
  int head_dim = 0;
  int64_t capacity = 0;  // rows per head (a multiple of kKeyBlockRows with key blocks)
  bool k_blocks = false;  // K in key blocks
  // K row of the view's row 0: a view that starts inside a key block (sliding windows) points k
  // at that block and skips k_first rows of it; always 0 without key blocks (k is moved instead).
  int64_t k_first = 0;
  // Per KV head and page of kKeyPageRows rows, the min and max of the keys (spec_predictor.h):
  // [n_kv_heads][key_pages_per_head] records of key_page_record_bytes(head_dim) bytes (8-bit
  // bounds and a scale), for the quest predictor. nullptr (e.g. a sliding-window view, whose rows
  // do not start on a page): that predictor falls back to sink-window for this view.
  const KeyBound* key_pages = nullptr;
  int64_t key_pages_per_head = 0;

  size_t row_bytes() const { return alspec::row_bytes(type, head_dim); }
  // Byte offset of row `pos` of KV head `head` inside k (and inside v).
  size_t row_offset(int head, int64_t pos) const {
    return (static_cast<size_t>(head) * static_cast<size_t>(capacity) + static_cast<size_t>(pos)) * row_bytes();
  }
  const uint8_t* k_row(int head, int64_t pos) const { return static_cast<const uint8_t*>(k) + row_offset(head, pos); }
  const uint8_t* v_row(int head, int64_t pos) const { return static_cast<const uint8_t*>(v) + row_offset(head, pos); }
  const KeyBound* head_key_pages(int head) const {
    return key_pages + static_cast<size_t>(head) * static_cast<size_t>(key_pages_per_head) *
                           key_page_record_bytes(head_dim);
  }
};

// Bytes of K (or of V) for one layer: n_kv_heads * capacity rows.
size_t kv_cache_bytes(DType type, int n_kv_heads, int head_dim, int64_t capacity);

// Cache element types: F32, F16, BF16 and Q8_0 (8-bit blocks; needs head_dim % 32 == 0).
bool is_kv_cache_type(DType t);
// Throws Error(kInvalidArgument) unless `type` can be a KV cache element type at this head_dim.
// The one validation of cache types: KvCache, the kernels and the benchmarks all call it.
void check_kv_type(DType type, int head_dim);

// The one place that writes cache rows: converts head_dim floats into one row of `type`
// with quantize_row (round to nearest even for F16/BF16; Q8_0 per 32-block scale amax/127).
void store_kv_row(DType type, const float* src, void* dst, int head_dim);
// Reads one cache row back into floats with dequantize_row (the reference semantics).
void load_kv_row(DType type, const void* src, float* dst, int head_dim);

// Whether K of this type can use key blocks (F32, F16, BF16), and whether the engine should: true
// when the row kernel of the level in effect (attention_simd_level) reads key blocks directly
// (AVX2 or AVX-512, head_dim 64 or 128). Any level reads either layout (the scalar kernel through
// load_key_row), so a cache made at one level stays valid when the level is lowered.
bool key_blocks_supported(DType type);
bool prefer_key_blocks(DType type, int head_dim);

// K row `row` of one KV head, whose plane (row 0, or block 0) starts at head_base, in rows or key
// blocks: encoded/decoded exactly as store_kv_row/load_kv_row (the same values either way).
void store_key_row(DType type, bool blocks, const float* src, void* head_base, int64_t row, int head_dim);
void load_key_row(DType type, bool blocks, const void* head_base, int64_t row, float* dst, int head_dim);

struct AttentionShape {
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // must divide n_heads
  int head_dim = 0;
};

struct DecodeQuery {
  const float* q = nullptr;  // [n_heads][head_dim], RoPE applied
  KvCacheView kv;            // this sequence's cache; rows [0, pos] are valid
  int64_t pos = 0;           // position of the newest token (already in the cache); L = pos + 1
  float* out = nullptr;      // [n_heads][head_dim]
};

// Exact attention of one new token per sequence. spec_chunk = S selects the partition plan above
// (0: plain chunks); pass the S of the speculative kernel to reproduce its O_exact bit for bit.
// `predictor` (with spec_chunk > 0) selects the plan of that predictor, so flash_decode(..., S, P)
// is bitwise the O_exact of speculative_flash_decode(..., S, ..., P).
void flash_decode(Device& dev, const AttentionShape& shape, std::span<const DecodeQuery> batch, int spec_chunk = 0,
                  SpecPredictor predictor = SpecPredictor::kSinkWindow);

struct SpecResult {
  double dist2 = 0;   // sum over heads and head_dim of (O_spec - O_exact)^2, in double, fixed order
  double norm2 = 0;   // sum of O_exact^2
  bool accept = false;         // speculation_accepts(dist2, norm2, lambda)
  bool full_coverage = false;  // L <= 2S: O_spec is O_exact, the check is trivially passed
};

// The check (spec §4): the relative L2 error of O_spec is at most lambda, i.e.
// dist2 <= lambda^2 * norm2 (non-strict), in double. Every path that decides uses this.
inline bool speculation_accepts(double dist2, double norm2, float lambda) {
  const double lambda2 = static_cast<double>(lambda) * static_cast<double>(lambda);
  return dist2 <= lambda2 * norm2;
}

struct SpecDecodeQuery {
  DecodeQuery base;          // base.out receives O_exact
  float* out_spec = nullptr;  // [n_heads][head_dim] receives O_spec
};

// One pass yielding O_exact, O_spec and the check. on_spec_ready() runs once, on the calling
// thread, after every sequence's O_spec is normalised and written and before any middle chunk is
// processed (the completion signal another device waits on); it must not call the attention
// kernels itself (Error(kRuntime)). S >= 1, lambda >= 0.
void speculative_flash_decode(Device& dev, const AttentionShape& shape, std::span<const SpecDecodeQuery> batch,
                              int spec_chunk, float lambda, std::span<SpecResult> results,
                              FunctionRef<void()> on_spec_ready, std::span<double> group_terms = {},
                              SpecPredictor predictor = SpecPredictor::kSinkWindow);
// group_terms (optional, batch.size() * n_kv_heads * 2 doubles): receives each KV group's own
// terms {dist2, norm2} in [sequence][group] order. SpecResult's sums are 0.0 + group 0 + group 1 +
// ... in that order, so ranks holding disjoint groups (tensor parallelism) can gather the terms and
// reproduce the single-rank sums bit for bit.

// SIMD level the row kernels use for this head_dim: simd_level() (cpu_features.h, capped by
// ALSPEC_SIMD / set_simd_level), lowered when head_dim is not a multiple of the vector width
// (AVX-512 needs head_dim % 16 == 0, AVX2 head_dim % 8 == 0).
SimdLevel attention_simd_level(int head_dim);

// The row kernel attention_simd_level(head_dim) runs on such a cache, in words for reports, e.g.
// "avx2 fused, pipelined, K in key blocks" or "scalar twin".
std::string attention_kernel_variant(DType type, int head_dim, bool k_blocks);

}  // namespace alspec
