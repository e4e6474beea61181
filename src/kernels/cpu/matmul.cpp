// matvec/matmul: row blocks of matmul_rows_per_task rows per task, each output element computed
// by one dot kernel call, so the split and the thread count never change a result.
#include "alspec/kernels/matmul.h"

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/kernels/cpu_features.h"
#include "alspec/kernels/quant.h"
#include "kernels/cpu/dot_kernels.h"
#include "kernels/cpu/gemm_kernels.h"
#include "kernels/cpu/quantized_activation.h"

namespace alspec {
namespace {

using kernels::DotKernels;

const DotKernels& active_kernels() {
  switch (simd_level()) {
    case SimdLevel::kAvx512: return kernels::dot_kernels_avx512();
    case SimdLevel::kAvx2: return kernels::dot_kernels_avx2();
    case SimdLevel::kScalar: break;
  }
  return kernels::dot_kernels_scalar();
}

void validate(const WeightMatrix& w, const char* fn) {
  const std::string where = std::string(fn) + ": ";
  if (!is_compute_type(w.type)) throw_invalid_argument(where + "unsupported weight type " + std::string(dtype_name(w.type)));
  if (w.rows < 0 || w.cols < 0) throw_invalid_argument(where + "negative shape");
  const auto bytes = row_bytes_checked(w.type, static_cast<uint64_t>(w.cols));
  if (!bytes) {
    throw_invalid_argument(where + std::to_string(w.cols) + " columns is not a whole number of " +
                           std::string(dtype_name(w.type)) + " blocks");
  }
  if (w.row_bytes < *bytes) throw_invalid_argument(where + "row stride smaller than a row");
  if (w.rows > 0 && w.cols > 0 && w.data == nullptr) throw_invalid_argument(where + "null weight data");
}

// The GEMM kernels of the level, nullptr at scalar (the dot kernels serve every row there).
const kernels::GemmKernels* active_gemm_kernels() {
  switch (simd_level()) {
    case SimdLevel::kAvx512: return &kernels::gemm_kernels_avx512();
    case SimdLevel::kAvx2: return &kernels::gemm_kernels_avx2();
    case SimdLevel::kScalar: break;
  }
  return nullptr;
}

// narrow: the Q4_K/Q6_K kernels of the narrow token tile (GemmKernels::k_tokens_narrow).
kernels::QuantGemm gemm_kernel(const kernels::GemmKernels* k, DType t, bool narrow) {
  if (k == nullptr) return nullptr;
  switch (t) {
    case DType::Q8_0: return k->q8_0;
    case DType::Q4_0: return k->q4_0;
    case DType::Q5_0: return k->q5_0;
    case DType::Q4_K: return narrow ? k->q4_k_narrow : k->q4_k;
    case DType::Q6_K: return narrow ? k->q6_k_narrow : k->q6_k;
    default: return nullptr;
  }
}

// Products of at least this many tokens run on the GEMM kernels (where the type has one).
constexpr int64_t kGemmMinTokens = 2;
// Rows per GEMM task (a multiple of every level's tile rows). The GEMM is compute-bound: small
// tasks balance the threads (~30 us each for 64 tokens at K = 896), while each task still reads
// its rows from memory once for all tokens.
constexpr int64_t kGemmTaskRows = 16;

kernels::QuantDot quant_kernel(const DotKernels& k, DType t) {
  switch (t) {
    case DType::Q8_0: return k.q8_0;
    case DType::Q4_0: return k.q4_0;
    case DType::Q4_K: return k.q4_k;
    case DType::Q6_K: return k.q6_k;
    case DType::Q4_1: return k.q4_1;
    case DType::Q5_0: return k.q5_0;
    default: return nullptr;
  }
}

kernels::FloatDot float_kernel(const DotKernels& k, DType t) {
  switch (t) {
    case DType::F32: return k.f32;
    case DType::F16: return k.f16;
    case DType::BF16: return k.bf16;
    default: return nullptr;
  }
}

constexpr int64_t kTokenTile = 16;

// One matrix of a (possibly fused) product: its tasks are [first_task, first_task + tasks).
struct Part {
  const WeightMatrix* w;
  float* y;
  int64_t rows_per_task, first_task, tasks;
  kernels::QuantDot qdot;
  kernels::QuantDot2 qdot2;
  kernels::FloatDot fdot;
  kernels::QuantGemm gemm;  // set only for products of >= kGemmMinTokens tokens
  int64_t n_gemm;           // tokens [0, n_gemm) on gemm, the rest on the dot kernels
  kernels::QuantDotTokens qdot_tokens;  // Q4_K/Q6_K: several tokens per weight row (or nullptr)
};

bool is_k_quant(DType t) { return t == DType::Q4_K || t == DType::Q6_K; }

// Tokens of an n-token product that the Q4_K/Q6_K GEMM computes (whole tiles of tw tokens): a
// last partial tile of at least 6 tokens is padded, a smaller one goes to the multi-token dot
// kernels (whose results are the same). The GEMM unpacks a task's rows once per call, so a padded
// tile costs about a full one. Measured on the Zen 4 VM (1 thread, AVX-512, Q4_K 8960x1536 /
// Q6_K 1536x8960, GMAC/s, noisy +-15%), threshold 6 vs 3 vs main: n=3 25/18/14 and 19/16/18,
// n=4 34/24/29 and 34/34/25, n=7 39/38/30 and 29/30/31.
// The narrow tile (GemmKernels::k_tokens_narrow, products of at most its width) takes products
// from 3 tokens on since its panel's scales are unpacked with vector operations (Zen 4, AVX-512,
// 1 thread, 896x4864, ms, dot kernels -> narrow GEMM: Q4_K n=2 0.33 -> 0.40, n=3 0.51 -> 0.41,
// n=4 0.56 -> 0.41, n=5 0.72 -> 0.41; Q6_K n=2 0.39 -> 0.44, n=3 0.65 -> 0.44, n=4 0.52 -> 0.45).
constexpr int64_t kKWideMinTail = 6, kKNarrowMinTail = 3;
int64_t k_gemm_tokens(int64_t n, int tw, int64_t min_tail) {
  const int64_t tail = n % tw;
  return tail >= min_tail ? n : n - tail;
}

// Rows [r0, r1) of one matrix for n tokens; x is n rows of w.cols floats, ga their quantised
// form (quantised types only). Each element is one dot-kernel call or one GEMM tile output, both
// with the arithmetic of matmul.h, whatever the split.
void run_rows(const Part& p, const float* x, const kernels::GemmActivations& ga, int64_t n, int64_t r0, int64_t r1) {
  const WeightMatrix& w = *p.w;
  const auto* base = static_cast<const uint8_t*>(w.data);
  float* y = p.y;
  const kernels::ActivationRow* acts = ga.rows;
  if (p.gemm) {
    if (p.n_gemm > 0) {
      p.gemm(base + static_cast<size_t>(r0) * w.row_bytes, w.row_bytes, r1 - r0, ga, p.n_gemm, y + r0, w.rows);
    }
    for (int64_t r = r0; r < r1 && p.n_gemm < n; ++r) {
      const uint8_t* wr = base + static_cast<size_t>(r) * w.row_bytes;
      if (p.qdot_tokens) {
        p.qdot_tokens(wr, acts + p.n_gemm, n - p.n_gemm, y + p.n_gemm * w.rows + r, w.rows);
      } else {
        for (int64_t t = p.n_gemm; t < n; ++t) y[t * w.rows + r] = p.qdot(wr, acts[t]);
      }
    }
    return;
  }
  // Cache blocking: a task's rows (~kMatmulTaskBytes) are read from memory once and stay in L2
  // while tiles of kTokenTile activation rows pass over them; within a tile each weight row is
  // reused from L1 for every token.
  for (int64_t t0 = 0; t0 < n; t0 += kTokenTile) {
    const int64_t t1 = std::min(n, t0 + kTokenTile);
    int64_t r = r0;
    if (p.qdot) {
      if (p.qdot2) {  // two rows per call share the activation loads; per-row arithmetic unchanged
        for (; r + 1 < r1; r += 2) {
          const uint8_t* wr = base + static_cast<size_t>(r) * w.row_bytes;
          for (int64_t t = t0; t < t1; ++t) {
            float out[2];
            p.qdot2(wr, wr + w.row_bytes, acts[t], out);
            y[t * w.rows + r] = out[0];
            y[t * w.rows + r + 1] = out[1];
          }
        }
      }
      for (; r < r1; ++r) {
        const uint8_t* wr = base + static_cast<size_t>(r) * w.row_bytes;
        for (int64_t t = t0; t < t1; ++t) y[t * w.rows + r] = p.qdot(wr, acts[t]);
      }
    } else {
      for (; r < r1; ++r) {
        const uint8_t* wr = base + static_cast<size_t>(r) * w.row_bytes;
        for (int64_t t = t0; t < t1; ++t) y[t * w.rows + r] = p.fdot(wr, x + t * w.cols, w.cols);
      }
    }
  }
}

// y_i = W_i x for every target (all with the same cols), n tokens: the activations are quantised
// once and the rows of all matrices run in one parallel loop.
void run(Device& dev, std::span<const MatvecTarget> targets, const float* x, int64_t n, const char* fn) {
  if (n < 0) throw_invalid_argument(std::string(fn) + ": negative token count");
  for (const auto& t : targets) {
    if (t.w == nullptr || t.y == nullptr) throw_invalid_argument(std::string(fn) + ": null matrix or output");
    validate(*t.w, fn);
    if (t.w->cols != targets[0].w->cols) throw_invalid_argument(std::string(fn) + ": fused matrices differ in cols");
  }
  if (n == 0 || targets.empty()) return;
  const DotKernels& k = active_kernels();
  std::vector<Part> parts;
  int64_t tasks = 0;
  bool any_quant = false, groups = false, any_gemm = false, any_super = false, any_blocks = false;
  int64_t k_tokens = 0;  // tokens of the Q4_K/Q6_K GEMM's tiles (0: none runs)
  const kernels::GemmKernels* gk = active_gemm_kernels();
  const bool narrow_k = gk != nullptr && gk->k_tokens_narrow > 0 && n <= gk->k_tokens_narrow;
  for (const auto& t : targets) {
    const WeightMatrix& w = *t.w;
    if (w.rows == 0) continue;
    Part p{&w,
           t.y,
           matmul_rows_per_task(w),
           tasks,
           0,
           quant_kernel(k, w.type),
           nullptr,
           float_kernel(k, w.type),
           n >= kGemmMinTokens ? gemm_kernel(gk, w.type, narrow_k) : nullptr,
           n,
           w.type == DType::Q4_K ? k.q4_k_tokens : w.type == DType::Q6_K ? k.q6_k_tokens : nullptr};
    if (is_k_quant(w.type)) {
      any_super = true;
      if (p.gemm) {  // the multi-token dot kernel serves the rows' remaining tokens
        const int tw = narrow_k ? gk->k_tokens_narrow : gk->k_tokens;
        p.n_gemm = k_gemm_tokens(n, tw, narrow_k ? kKNarrowMinTail : kKWideMinTail);
        if (p.n_gemm > 0) k_tokens = tw;
      }
    } else {
      any_gemm = any_gemm || p.gemm != nullptr;
      any_blocks = any_blocks || p.qdot != nullptr;
    }
    if (p.gemm) p.rows_per_task = kGemmTaskRows;
    if (w.type == DType::Q4_0 && !p.gemm) {  // the GEMM reads the plain blocks
      p.qdot2 = k.q4_0_x2;
      groups = groups || k.q4_0_uses_groups;
    }
    any_quant = any_quant || p.qdot != nullptr;
    p.tasks = (w.rows + p.rows_per_task - 1) / p.rows_per_task;
    tasks += p.tasks;
    parts.push_back(p);
  }
  if (parts.empty()) return;
  const int64_t cols = parts[0].w->cols;
  thread_local kernels::QuantizedActivations caller_acts;
  // A named reference: inside a lambda `caller_acts` would name each worker's own instance.
  kernels::QuantizedActivations& acts = caller_acts;
  std::vector<kernels::ActivationRow> rows;
  thread_local std::vector<int32_t> caller_sums;
  std::vector<int32_t>& neg_sum4 = caller_sums;
  if (any_quant) {  // (any_gemm implies any_quant)
    acts.prepare(n, cols, groups, any_super, any_blocks);
    rows.resize(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) rows[static_cast<size_t>(t)] = acts.row(t);  // views of the buffers
    const int64_t per_token = cols / 32 * 8;
    if (any_gemm) neg_sum4.resize(static_cast<size_t>(n * per_token));
    // The GEMM's lane sums in the same loop (one barrier less per product: a batched decode
    // pass runs ~100 products of a few tokens).
    dev.parallel_for(static_cast<size_t>(n), [&](size_t t, int) {
      acts.quantize_row(static_cast<int64_t>(t), x + static_cast<int64_t>(t) * cols);
      if (any_gemm) kernels::lane_sums_negated(rows[t], neg_sum4.data() + static_cast<int64_t>(t) * per_token);
    });
  }
  thread_local std::vector<uint64_t> caller_k_panel;  // 8-byte aligned
  std::vector<uint64_t>& k_panel = caller_k_panel;
  if (k_tokens > 0) {
    const int64_t tiles = (n + k_tokens - 1) / k_tokens;  // all tokens (parts may stop short of n)
    const int64_t tile_bytes = cols / 256 * kernels::kKPanelBytes * k_tokens;
    k_panel.resize(static_cast<size_t>((tiles * tile_bytes + 7) / 8));
    auto* panel = reinterpret_cast<uint8_t*>(k_panel.data());
    dev.parallel_for(static_cast<size_t>(tiles), [&](size_t tile, int) {
      kernels::build_k_panel_tile(rows.data(), n, static_cast<int>(k_tokens), static_cast<int64_t>(tile), panel);
    });
  }
  const kernels::GemmActivations ga{rows.data(), neg_sum4.data(), reinterpret_cast<const uint8_t*>(k_panel.data())};
  // Contiguous shares: each thread streams one long run of rows (see parallel_for_contiguous).
  dev.parallel_for_contiguous(static_cast<size_t>(tasks), [&](size_t task, int) {
    const auto ti = static_cast<int64_t>(task);
    size_t i = 0;
    while (ti >= parts[i].first_task + parts[i].tasks) ++i;
    const Part& p = parts[i];
    const int64_t r0 = (ti - p.first_task) * p.rows_per_task;
    run_rows(p, x, ga, n, r0, std::min(p.w->rows, r0 + p.rows_per_task));
  });
}

}  // namespace

int64_t matmul_rows_per_task(const WeightMatrix& w) {
  const auto rows = static_cast<int64_t>(kMatmulTaskBytes / std::max<size_t>(w.row_bytes, 1));
  return std::max<int64_t>(2, rows & ~int64_t{1});
}

void matvec(Device& dev, const WeightMatrix& w, const float* x, float* y) {
  const MatvecTarget t{&w, y};
  run(dev, std::span<const MatvecTarget>(&t, 1), x, 1, "matvec");
}

void matvec_fused(Device& dev, std::span<const MatvecTarget> targets, const float* x) {
  run(dev, targets, x, 1, "matvec_fused");
}

void matmul(Device& dev, const WeightMatrix& w, const float* x, int64_t n, float* y) {
  const MatvecTarget t{&w, y};
  run(dev, std::span<const MatvecTarget>(&t, 1), x, n, "matmul");
}

void matmul_fused(Device& dev, std::span<const MatvecTarget> targets, const float* x, int64_t n) {
  run(dev, targets, x, n, "matmul_fused");
}

void matvec_reference(const WeightMatrix& w, const float* x, float* y) {
  validate(w, "matvec_reference");
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(w.type, static_cast<const uint8_t*>(w.data) + static_cast<size_t>(r) * w.row_bytes, row.data(),
                   w.cols);
    double acc = 0.0;
    for (int64_t e = 0; e < w.cols; ++e) acc += static_cast<double>(row[static_cast<size_t>(e)]) * x[e];
    y[r] = static_cast<float>(acc);
  }
}

}  // namespace alspec

namespace alspec {

std::string matmul_kernel_variant() {
  const kernels::DotKernels& k = active_kernels();
  std::string out(simd_level_name(simd_level()));
  out += " dot kernels";
  if (k.q4_0_x2 != nullptr) out += ", Q4_0 two rows at a time";
  if (k.q4_0_uses_groups) out += ", Q4_0 on grouped activations";
  if (const kernels::GemmKernels* g = active_gemm_kernels()) out += std::string("; prefill GEMM ") + g->tile;
  return out;
}

}  // namespace alspec
