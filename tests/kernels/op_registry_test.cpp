// Registry of the kernel ops in the spirit of llama.cpp's test-backend-ops: every op x shape x type
// runs at the SIMD level under test and is checked against its plain twin (the scalar level) and
// the double-precision reference, with the contract each op states:
//  - matvec / matvec_fused / matmul (every weight type): bitwise equal to the scalar twin and
//    across thread counts and between matmul rows and matvec (matmul.h); per row
//    |y - ref| <= 1e-5 * sum |w x| against dequantised weights times the activation as the kernels
//    see it (quantised types: after the 8-bit block quantisation), in double.
//  - activation quantisation (QuantizedActivations): bitwise equal to quantize_row_scalar.
//  - attention (flash_decode and speculative_flash_decode, every KV type, K in rows and in key
//    blocks, head_dim 64/128/other, GQA 1-12): NMSE <= 1e-10 against the reference and against
//    the scalar twin (levels differ in rounding only), bitwise equal across thread counts, and
//    flash_decode(S) bitwise the speculative kernel's O_exact.
//  - quantize_row / dequantize_row (reference code, level-independent): round-trip NMSE bounds.
// ctest runs this once per forced level (kernels_ops_scalar / _avx2 / _avx512 set ALSPEC_SIMD), so
// a host with AVX-512 also checks the AVX2 and scalar paths; a level the host lacks is skipped
// with the reason. Without ALSPEC_SIMD the test checks every level the host has.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "alspec/kernels/attention.h"
#include "alspec/kernels/cpu_features.h"
#include "alspec/kernels/matmul.h"
#include "alspec/kernels/quant.h"
#include "alspec/runtime/device.h"
#include "kernels/attention_test_util.h"
#include "kernels/cpu/quantized_activation.h"
#include "kernels/activation_reference.h"

namespace alspec {
namespace {

using attention_test::nmse;
using attention_test::random_query;
using attention_test::reference;
using attention_test::reference_full;
using attention_test::TestCache;

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<float> random_floats(size_t n, uint32_t seed, float mean = 0.0f, float sd = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(mean, sd);
  std::vector<float> x(n);
  for (auto& v : x) v = nd(rng);
  return x;
}

// Runs f at `level` (the process cap restored afterwards).
template <class F>
auto at_level(SimdLevel level, F&& f) {
  set_simd_level(level);
  auto r = f();
  set_simd_level(SimdLevel::kAvx512);
  return r;
}

struct Weights {
  std::vector<uint8_t> bytes;
  WeightMatrix w;
};

Weights make_weights(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  Weights m;
  const size_t rb = row_bytes(t, cols);
  m.bytes.resize(rb * static_cast<size_t>(rows));
  const std::vector<float> src = random_floats(static_cast<size_t>(rows * cols), seed, 0.0f, 0.5f);
  for (int64_t r = 0; r < rows; ++r) quantize_row(t, src.data() + r * cols, m.bytes.data() + r * rb, cols);
  m.w = {t, m.bytes.data(), rows, cols, rb};
  return m;
}

std::vector<float> run_matvec(const WeightMatrix& w, const std::vector<float>& x, int threads) {
  Device dev({.name = "t", .threads = threads, .cores = {}});
  std::vector<float> y(static_cast<size_t>(w.rows));
  matvec(dev, w, x.data(), y.data());
  return y;
}

using kernel_testing::activation_as_quantised;

double max_matvec_error = 0.0;  // printed at the end, for the stated bound

// One registered check: `run(level)` adds failures with the case's name.
struct OpCase {
  std::string name;
  std::function<void(SimdLevel)> run;
};

bool is_float_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

void register_matmul_ops(std::vector<OpCase>& ops) {
  const DType types[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                         DType::Q4_1, DType::Q5_0, DType::Q4_K, DType::Q6_K};
  uint32_t seed = 1;
  for (DType t : types) {
    const bool k_quant = t == DType::Q4_K || t == DType::Q6_K;
    // Rows: one, odd (a lone last row for the two-row kernels), several tasks' worth; cols: one
    // block, odd block counts, a 4096-wide layer (K-quants: multiples of 256).
    const std::vector<int64_t> cols_list = k_quant ? std::vector<int64_t>{256, 768, 4096}
                                                   : is_float_type(t) ? std::vector<int64_t>{7, 269, 4096}
                                                                      : std::vector<int64_t>{32, 224, 4096};
    for (int64_t rows : {int64_t{1}, int64_t{77}, int64_t{600}}) {
      for (int64_t cols : cols_list) {
        const uint32_t s = seed++;
        const std::string name = "matvec " + std::string(dtype_name(t)) + " " + std::to_string(rows) + "x" +
                                 std::to_string(cols);
        ops.push_back({name, [=](SimdLevel level) {
                         const Weights m = make_weights(t, rows, cols, s);
                         const std::vector<float> x = random_floats(static_cast<size_t>(cols), s + 1000);
                         // Reference: dequantised weights times the activation as the kernels see
                         // it (quantised types: after the 8-bit block quantisation, per 256
                         // elements for Q4_K/Q6_K), in double.
                         const std::vector<float> xa =
                             is_float_type(t) ? x : activation_as_quantised(x, k_quant ? 256 : 32);
                         std::vector<double> ref(static_cast<size_t>(rows)), mag(static_cast<size_t>(rows));
                         std::vector<float> wr(static_cast<size_t>(cols));
                         for (int64_t r = 0; r < rows; ++r) {
                           dequantize_row(t, m.bytes.data() + static_cast<size_t>(r) * m.w.row_bytes, wr.data(), cols);
                           for (int64_t k = 0; k < cols; ++k) {
                             ref[static_cast<size_t>(r)] += static_cast<double>(wr[k]) * xa[k];
                             mag[static_cast<size_t>(r)] += std::fabs(static_cast<double>(wr[k]) * xa[k]);
                           }
                         }
                         const auto y = at_level(level, [&] { return run_matvec(m.w, x, 2); });
                         const auto y1 = at_level(level, [&] { return run_matvec(m.w, x, 1); });
                         const auto y_scalar = at_level(SimdLevel::kScalar, [&] { return run_matvec(m.w, x, 1); });
                         // Float rounding only: |y - ref| <= 1e-5 * sum |w x| per row (measured
                         // worst over the registry: 1.3e-7).
                         double worst = 0.0;
                         for (size_t r = 0; r < y.size(); ++r) {
                           worst = std::max(worst, std::fabs(y[r] - ref[r]) / std::max(mag[r], 1e-30));
                         }
                         EXPECT_LE(worst, 1e-5) << name;
                         max_matvec_error = std::max(max_matvec_error, worst);
                         EXPECT_TRUE(bitwise_equal(y, y_scalar)) << name << ": differs from the scalar twin";
                         EXPECT_TRUE(bitwise_equal(y, y1)) << name << ": differs between 1 and 2 threads";
                       }});
      }
    }
    // matmul of n tokens vs the scalar twin's matvec per token (the GEMM kernels from 2 tokens on: rows and tokens
    // that are not whole register tiles, block counts that are not whole groups of 4, several
    // tasks and several token tiles of the GEMM); matvec_fused vs matvec.
    struct MatmulShape {
      int64_t rows, cols;
      std::vector<int64_t> tokens;
    };
    const std::vector<MatmulShape> shapes = {
        {90, k_quant ? 512 : 256, {1, 5, 17, 33}},
        {37, k_quant ? 768 : 224, {2, 3, 4, 7}},
        {130, 8192, {29}},
    };
    const int64_t cols = shapes[0].cols;
    const uint32_t s = seed++;
    const std::string name = "matmul " + std::string(dtype_name(t));
    ops.push_back({name, [=](SimdLevel level) {
                     for (const MatmulShape& sh : shapes) {
                       const Weights m = make_weights(t, sh.rows, sh.cols, s + static_cast<uint32_t>(sh.cols));
                       for (int64_t n : sh.tokens) {
                         const std::vector<float> x = random_floats(static_cast<size_t>(n * sh.cols), s + 7);
                         const auto y = at_level(level, [&] {
                           Device dev({.name = "t", .threads = 3, .cores = {}});
                           std::vector<float> out(static_cast<size_t>(n * sh.rows));
                           matmul(dev, m.w, x.data(), n, out.data());
                           return out;
                         });
                         for (int64_t i = 0; i < n; ++i) {
                           const std::vector<float> xi(x.begin() + i * sh.cols, x.begin() + (i + 1) * sh.cols);
                           const auto yi = at_level(SimdLevel::kScalar, [&] { return run_matvec(m.w, xi, 1); });
                           const std::vector<float> row(y.begin() + i * sh.rows, y.begin() + (i + 1) * sh.rows);
                           EXPECT_TRUE(bitwise_equal(row, yi))
                               << name << " " << sh.rows << "x" << sh.cols << " n " << n << " row " << i;
                         }
                       }
                     }
                     const Weights m = make_weights(t, 90, cols, s);
                     const Weights m2 = make_weights(t, 40, cols, s + 1);
                     const std::vector<float> x = random_floats(static_cast<size_t>(cols), s + 9);
                     const auto fused = at_level(level, [&] {
                       Device dev({.name = "t", .threads = 2, .cores = {}});
                       std::vector<float> a(90), b(40);
                       const MatvecTarget targets[] = {{&m.w, a.data()}, {&m2.w, b.data()}};
                       matvec_fused(dev, targets, x.data());
                       a.insert(a.end(), b.begin(), b.end());
                       return a;
                     });
                     auto separate = at_level(level, [&] { return run_matvec(m.w, x, 1); });
                     const auto second = at_level(level, [&] { return run_matvec(m2.w, x, 1); });
                     separate.insert(separate.end(), second.begin(), second.end());
                     EXPECT_TRUE(bitwise_equal(fused, separate)) << name << ": matvec_fused differs from matvec";
                   }});
  }
}

void register_activation_ops(std::vector<OpCase>& ops) {
  for (int64_t k : {int64_t{32}, int64_t{96}, int64_t{4096}}) {
    const std::string name = "quantize activations K" + std::to_string(k);
    ops.push_back({name, [=](SimdLevel level) {
                     // Blocks of ordinary values, all zeros, one huge element, denormals.
                     std::vector<float> x = random_floats(static_cast<size_t>(k), static_cast<uint32_t>(k));
                     for (int j = 0; j < 32 && k >= 96; ++j) {
                       x[static_cast<size_t>(32 + j)] = 0.0f;
                       x[static_cast<size_t>(64 + j)] = j == 5 ? 1e30f : 1e-40f * static_cast<float>(j);
                     }
                     auto quantise = [&](bool scalar) {
                       kernels::QuantizedActivations a;
                       a.prepare(1, k, false, k % 256 == 0);  // with the super-block form where k allows
                       if (scalar) {
                         a.quantize_row_scalar(0, x.data());
                       } else {
                         a.quantize_row(0, x.data());
                       }
                       const kernels::ActivationRow r = a.row(0);
                       std::vector<float> out;
                       for (int64_t i = 0; i < k; ++i) out.push_back(static_cast<float>(r.q[i]));
                       for (int64_t b = 0; b < r.blocks; ++b) {
                         out.push_back(r.d[b]);
                         out.push_back(static_cast<float>(r.sum[b]));
                       }
                       for (int64_t i = 0; i < 256 * r.super_blocks; ++i) out.push_back(static_cast<float>(r.kq[i]));
                       for (int64_t s = 0; s < r.super_blocks; ++s) out.push_back(r.kd[s]);
                       for (int64_t i = 0; i < 16 * r.super_blocks; ++i) out.push_back(static_cast<float>(r.ksum[i]));
                       return out;
                     };
                     const auto v = at_level(level, [&] { return quantise(false); });
                     EXPECT_TRUE(bitwise_equal(v, quantise(true))) << name << ": differs from the scalar twin";
                   }});
  }
}

void register_quant_ops(std::vector<OpCase>& ops) {
  // Round trip of quantize_row/dequantize_row on N(0, 1) values: the format's rounding only.
  // Measured NMSE (this seed, ALSPEC_OP_REGISTRY_VERBOSE=1): f32 0, f16 4.2e-8, bf16 2.8e-6,
  // q8_0 3.0e-5, q5_0 2.0e-3, q4_1 6.2e-3, q4_0 7.8e-3, q4_k 6.2e-3, q6_k 3.6e-4; bounds 2-5x that.
  const std::pair<DType, double> cases[] = {{DType::F32, 0.0},    {DType::F16, 1e-7},    {DType::BF16, 1e-5},
                                            {DType::Q8_0, 1e-4},  {DType::Q5_0, 5e-3},   {DType::Q4_1, 1.5e-2},
                                            {DType::Q4_0, 2e-2},  {DType::Q4_K, 1.5e-2}, {DType::Q6_K, 1e-3}};
  for (const auto& [t, bound] : cases) {
    const std::string name = "quantize_row/dequantize_row " + std::string(dtype_name(t));
    ops.push_back({name, [t = t, bound = bound, name](SimdLevel) {
                     const int64_t n = 256 * 16;
                     const std::vector<float> x = random_floats(static_cast<size_t>(n), 4242);
                     std::vector<uint8_t> q(row_bytes(t, n));
                     std::vector<float> y(static_cast<size_t>(n));
                     quantize_row(t, x.data(), q.data(), n);
                     dequantize_row(t, q.data(), y.data(), n);
                     const double e = nmse(y, std::vector<double>(x.begin(), x.end()));
                     EXPECT_LE(e, bound) << name;
                     if (std::getenv("ALSPEC_OP_REGISTRY_VERBOSE") != nullptr) std::printf("%s: nmse %.3g\n", name.c_str(), e);
                     // Quantising the decoded values again gives the same bytes (a fixed point).
                     std::vector<uint8_t> q2(q.size());
                     quantize_row(t, y.data(), q2.data(), n);
                     std::vector<float> y2(static_cast<size_t>(n));
                     dequantize_row(t, q2.data(), y2.data(), n);
                     EXPECT_LE(nmse(y2, std::vector<double>(y.begin(), y.end())), bound) << name << " (again)";
                   }});
  }
}

struct AttnOutputs {
  std::vector<float> exact, spec, plain;
};

AttnOutputs run_attention(int threads, const AttentionShape& shape, const std::vector<float>& q, const KvCacheView& kv,
                          int64_t L, int S) {
  Device dev({.name = "t", .threads = threads, .cores = {}});
  const size_t n = static_cast<size_t>(shape.n_heads) * static_cast<size_t>(shape.head_dim);
  AttnOutputs o{std::vector<float>(n), std::vector<float>(n), std::vector<float>(n)};
  const SpecDecodeQuery sq{{q.data(), kv, L - 1, o.exact.data()}, o.spec.data()};
  SpecResult r;
  if (S > 0) speculative_flash_decode(dev, shape, {&sq, 1}, S, 0.1f, {&r, 1}, [] {});
  const DecodeQuery dq{q.data(), kv, L - 1, o.plain.data()};
  flash_decode(dev, shape, {&dq, 1}, S);
  return o;
}

void register_attention_ops(std::vector<OpCase>& ops) {
  struct Shape {
    int gqa, d;
  };
  // GQA 1-3 (unpipelined), 4-8 (pipelined), 12 (beyond); head_dim 64/128 (fused) and 96, 40
  // (tiles decoded to float; 40 is AVX2-only).
  const Shape shapes[] = {{1, 128}, {3, 64}, {4, 128}, {4, 64}, {6, 128}, {7, 64}, {8, 128}, {12, 64}, {4, 96}, {2, 40}};
  uint32_t seed = 300;
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
    for (bool blocks : {false, true}) {
      if (blocks && !key_blocks_supported(t)) continue;
      for (const Shape& sh : shapes) {
        if (t == DType::Q8_0 && sh.d % 32 != 0) continue;
        const uint32_t s = seed++;
        const std::string name = "attention " + std::string(dtype_name(t)) + (blocks ? " key blocks" : " rows") +
                                 " gqa " + std::to_string(sh.gqa) + " d " + std::to_string(sh.d);
        ops.push_back({name, [=](SimdLevel level) {
                         const AttentionShape shape{2 * sh.gqa, 2, sh.d};
                         const TestCache cache(t, 2, sh.d, 1400, s, blocks);
                         const std::vector<float> q = random_query(shape.n_heads, sh.d, s + 1, 2.0f);
                         // Full tiles (pipelined), a partial last tile, windows off the block grid.
                         for (const auto& [L, S] : {std::pair<int64_t, int>{1400, 40}, {1100, 0}, {77, 16}, {5, 0}}) {
                           const std::string where = name + " L " + std::to_string(L) + " S " + std::to_string(S);
                           const auto a = at_level(level, [&] { return run_attention(1, shape, q, cache.view(), L, S); });
                           const auto b = at_level(level, [&] { return run_attention(3, shape, q, cache.view(), L, S); });
                           const auto tw = at_level(SimdLevel::kScalar,
                                                    [&] { return run_attention(1, shape, q, cache.view(), L, S); });
                           EXPECT_LE(nmse(a.plain, std::vector<double>(tw.plain.begin(), tw.plain.end())), 1e-10)
                               << where << " vs scalar twin";
                           if (S > 0 && L > 2 * S) {
                             RowRange storage[2];
                             EXPECT_LE(nmse(a.spec, reference(shape, q.data(), cache.view(),
                                                              sink_window_rows(L, S, storage))),
                                       1e-10)
                                 << where << " O_spec";
                           }
                           EXPECT_TRUE(bitwise_equal(a.exact, b.exact)) << where << ": 1 vs 3 threads";
                           EXPECT_TRUE(bitwise_equal(a.spec, b.spec)) << where << ": 1 vs 3 threads";
                           if (S > 0) {
                             EXPECT_TRUE(bitwise_equal(a.plain, a.exact)) << where << ": flash_decode(S) vs O_exact";
                           }
                           EXPECT_LE(nmse(a.plain, reference_full(shape, q.data(), cache.view(), L)), 1e-10) << where;
                           EXPECT_TRUE(bitwise_equal(a.plain, b.plain)) << where << ": 1 vs 3 threads";
                         }
                       }});
      }
    }
  }
}

std::vector<OpCase> registry() {
  std::vector<OpCase> ops;
  register_matmul_ops(ops);
  register_activation_ops(ops);
  register_quant_ops(ops);
  register_attention_ops(ops);
  return ops;
}

// Levels under test: the one ALSPEC_SIMD names (ctest's per-level entries), else all the host has.
TEST(OpRegistry, EveryOpAtTheForcedSimdLevel) {
  const char* env = std::getenv("ALSPEC_SIMD");
  std::vector<SimdLevel> levels;
  if (env != nullptr && *env != '\0') {
    const std::string want(env);
    const SimdLevel requested = want == "scalar" ? SimdLevel::kScalar
                                : want == "avx2" ? SimdLevel::kAvx2
                                                 : SimdLevel::kAvx512;
    if (requested > detected_simd_level()) {
      GTEST_SKIP() << "ALSPEC_SIMD=" << want << " but this CPU (" << cpu_model_name() << ") supports only "
                   << simd_level_name(detected_simd_level());
    }
    levels.push_back(requested);
  } else {
    for (SimdLevel l : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
      if (l <= detected_simd_level()) levels.push_back(l);
    }
  }
  const std::vector<OpCase> ops = registry();
  for (SimdLevel level : levels) {
    ASSERT_EQ(at_level(level, [] { return simd_level(); }), level);
    for (const OpCase& op : ops) {
      SCOPED_TRACE(std::string(simd_level_name(level)) + ": " + op.name);
      op.run(level);
    }
  }
  std::printf("%zu ops x %zu level(s); worst matvec error / sum|w x|: %.3g\n", ops.size(), levels.size(),
              max_matvec_error);
}

}  // namespace
}  // namespace alspec
