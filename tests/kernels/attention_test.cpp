// flash_decode and speculative_flash_decode against the double-precision reference twin.
#include "alspec/kernels/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "kernels/attention_test_util.h"

namespace alspec {
namespace {

using attention_test::nmse;
using attention_test::random_query;
using attention_test::reference;
using attention_test::reference_full;
using attention_test::TestCache;

// Kernel (float, online softmax, split-K) vs reference (double) on the same cache contents: only
// float rounding differs. Measured worst case over this file: 4.7e-12 (scalar path), 9.6e-13
// (AVX-512), 5.2e-13 (AVX2); the bound leaves more than an order of magnitude.
constexpr double kNmseSameCache = 1e-10;

// Kernel on the cache type vs reference on the original f32 values (N(0,1) K/V, q ~ N(0,4)): the
// cache rounding dominates. Measured: f32 1.5e-12, f16 6.1e-7, bf16 4.3e-5, q8_0 1.9e-4.
double nmse_vs_source(DType t) {
  switch (t) {
    case DType::F32: return 1e-10;
    case DType::F16: return 3e-6;
    case DType::BF16: return 2e-4;
    default: return 1e-3;  // Q8_0
  }
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::string label(DType t, int n_heads, int n_kv, int d, int64_t L, int S) {
  return std::string(dtype_name(t)) + " heads " + std::to_string(n_heads) + "/" + std::to_string(n_kv) + " d " +
         std::to_string(d) + " L " + std::to_string(L) + " S " + std::to_string(S);
}

struct SpecOutputs {
  std::vector<float> exact, spec;
  SpecResult result;
  int ready_calls = 0;
};

SpecOutputs run_spec(Device& dev, const AttentionShape& shape, const float* q, const KvCacheView& kv, int64_t pos,
                     int S, float lambda) {
  SpecOutputs o;
  const size_t n = static_cast<size_t>(shape.n_heads) * static_cast<size_t>(shape.head_dim);
  o.exact.assign(n, 0.0f);
  o.spec.assign(n, 0.0f);
  const SpecDecodeQuery sq{{q, kv, pos, o.exact.data()}, o.spec.data()};
  speculative_flash_decode(dev, shape, {&sq, 1}, S, lambda, {&o.result, 1}, [&] { ++o.ready_calls; });
  return o;
}

std::vector<float> run_plain(Device& dev, const AttentionShape& shape, const float* q, const KvCacheView& kv,
                             int64_t pos, int S) {
  std::vector<float> out(static_cast<size_t>(shape.n_heads) * static_cast<size_t>(shape.head_dim));
  const DecodeQuery dq{q, kv, pos, out.data()};
  flash_decode(dev, shape, {&dq, 1}, S);
  return out;
}

// Checks one (cache, query, L, S) point: plain and speculative against the reference.
void check_point(Device& dev, const AttentionShape& shape, const TestCache& cache, const std::vector<float>& q,
                 int64_t L, int S, bool check_source) {
  const std::string where = label(cache.type, shape.n_heads, shape.n_kv_heads, shape.head_dim, L, S);
  const KvCacheView kv = cache.view();
  const std::vector<double> ref = reference_full(shape, q.data(), kv, L);
  const std::vector<float> plain0 = run_plain(dev, shape, q.data(), kv, L - 1, 0);
  EXPECT_LE(nmse(plain0, ref), kNmseSameCache) << where;
  if (check_source) {
    const std::vector<double> src = reference_full(shape, q.data(), cache.source_view(), L);
    EXPECT_LE(nmse(plain0, src), nmse_vs_source(cache.type)) << where;
  }
  if (S == 0) return;
  const SpecOutputs o = run_spec(dev, shape, q.data(), kv, L - 1, S, 0.1f);
  EXPECT_EQ(o.ready_calls, 1);
  EXPECT_LE(nmse(o.exact, ref), kNmseSameCache) << where;
  RowRange storage[2];
  const std::vector<double> ref_spec = reference(shape, q.data(), kv, sink_window_rows(L, S, storage));
  EXPECT_LE(nmse(o.spec, ref_spec), kNmseSameCache) << where;
  EXPECT_EQ(o.result.full_coverage, L <= 2 * S) << where;
  if (L <= 2 * S) {
    EXPECT_TRUE(bitwise_equal(o.spec, o.exact)) << where;
    EXPECT_TRUE(o.result.accept);
    EXPECT_EQ(o.result.dist2, 0.0);
  }
  // Same plan, same bits.
  EXPECT_TRUE(bitwise_equal(run_plain(dev, shape, q.data(), kv, L - 1, S), o.exact)) << where;
  // The check as the specification states it, recomputed from the outputs.
  double d2 = 0.0, n2 = 0.0;
  for (size_t i = 0; i < o.exact.size(); ++i) {
    d2 += (static_cast<double>(o.spec[i]) - o.exact[i]) * (static_cast<double>(o.spec[i]) - o.exact[i]);
    n2 += static_cast<double>(o.exact[i]) * o.exact[i];
  }
  EXPECT_NEAR(o.result.dist2, d2, 1e-12 * (d2 + n2)) << where;
  EXPECT_NEAR(o.result.norm2, n2, 1e-12 * n2) << where;
  EXPECT_EQ(o.result.accept, o.result.dist2 <= 0.01 * o.result.norm2) << where;
}

TEST(Attention, MatchesReferenceAcrossTypesGqaAndHeadDims) {
  Device dev({.name = "t", .threads = 2, .cores = {}});
  // Around the 32-row tiles and the 1024-row chunks (kAttentionChunkRows), and several chunks.
  const int64_t lengths[] = {1, 2, 31, 33, 255, 256, 257, 700, 1023, 1024, 1025, 2100};
  uint32_t seed = 10;
  for (DType type : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
    for (int gqa : {1, 4, 8}) {
      for (int d : {64, 128}) {
        const int n_kv = 2;
        const AttentionShape shape{n_kv * gqa, n_kv, d};
        const TestCache cache(type, n_kv, d, 2100, seed++);
        const std::vector<float> q = random_query(shape.n_heads, d, seed++, 2.0f);
        for (int64_t L : lengths) check_point(dev, shape, cache, q, L, 16, L == 2100);
      }
    }
  }
}

TEST(Attention, SpecChunkSizesAndOddLengths) {
  Device dev({.name = "t", .threads = 2, .cores = {}});
  const AttentionShape shape{8, 2, 64};
  const TestCache cache(DType::F16, 2, 64, 1400, 77);
  const std::vector<float> q = random_query(8, 64, 78, 2.0f);
  for (int S : {16, 32, 64, 128, 256}) {
    for (int64_t L : {int64_t{1}, int64_t{S}, int64_t{2 * S}, int64_t{2 * S + 1}, int64_t{3 * S + 7},
                      int64_t{2 * S + 256}, int64_t{2 * S + 257}, int64_t{1399}}) {
      check_point(dev, shape, cache, q, L, S, false);
    }
  }
}

TEST(Attention, LongContexts) {
  // Few points, one KV head, so the long contexts stay fast (also under sanitizers).
  Device dev({.name = "t", .threads = 2, .cores = {}});
  const AttentionShape shape{4, 1, 128};
  const TestCache cache(DType::F16, 1, 128, 65536, 5);
  const std::vector<float> q = random_query(4, 128, 6, 3.0f);
  check_point(dev, shape, cache, q, 65536, 128, true);
  check_point(dev, shape, cache, q, 16411, 256, false);
  check_point(dev, shape, cache, q, 4099, 32, false);
}

TEST(Attention, HeadDimsOffTheSimdWidths) {
  // head_dim 8 (the embedded test model), 24 and 40 (AVX2 only), 48 and 96 (AVX-512 unfused path).
  Device dev({.name = "t", .threads = 2, .cores = {}});
  for (int d : {8, 24, 40, 48, 96}) {
    const AttentionShape shape{4, 2, d};
    const TestCache cache(DType::F16, 2, d, 300, static_cast<uint32_t>(d));
    const std::vector<float> q = random_query(4, d, 9, 2.0f);
    for (int64_t L : {1, 40, 299}) check_point(dev, shape, cache, q, L, 16, false);
  }
}

TEST(Attention, OtherGqaRatios) {
  // 2, 3, 6: every remainder of the AVX-512 kernel's blocks of four query heads.
  Device dev({.name = "t", .threads = 2, .cores = {}});
  for (int gqa : {2, 3, 6}) {
    for (DType type : {DType::F16, DType::Q8_0}) {
      const AttentionShape shape{2 * gqa, 2, 128};
      const TestCache cache(type, 2, 128, 300, static_cast<uint32_t>(gqa));
      const std::vector<float> q = random_query(shape.n_heads, 128, 21, 2.0f);
      for (int64_t L : {5, 299}) check_point(dev, shape, cache, q, L, 32, false);
    }
  }
}

TEST(Attention, EverySimdLevelMatchesReferenceAndScalarTwin) {
  Device dev({.name = "t", .threads = 1, .cores = {}});
  for (DType type : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
    for (bool blocks : {false, true}) {  // K in rows and in key blocks
      if (blocks && !key_blocks_supported(type)) continue;
      const AttentionShape shape{8, 2, 128};
      const TestCache cache(type, 2, 128, 600, 31, blocks);
      const std::vector<float> q = random_query(8, 128, 32, 2.0f);
      set_simd_level(SimdLevel::kScalar);
      const SpecOutputs scalar = run_spec(dev, shape, q.data(), cache.view(), 599, 64, 0.1f);
      for (SimdLevel level : {SimdLevel::kAvx2, SimdLevel::kAvx512}) {
        if (set_simd_level(level) != level) continue;  // CPU lacks it
        const SpecOutputs o = run_spec(dev, shape, q.data(), cache.view(), 599, 64, 0.1f);
        std::vector<double> s_exact(scalar.exact.begin(), scalar.exact.end());
        std::vector<double> s_spec(scalar.spec.begin(), scalar.spec.end());
        // Different exp and summation order than the scalar twin: float rounding only.
        EXPECT_LE(nmse(o.exact, s_exact), kNmseSameCache) << dtype_name(type) << " blocks " << blocks;
        EXPECT_LE(nmse(o.spec, s_spec), kNmseSameCache) << dtype_name(type) << " blocks " << blocks;
        check_point(dev, shape, cache, q, 600, 64, false);
      }
      set_simd_level(SimdLevel::kAvx512);
    }
  }
}

TEST(Attention, BitwiseIdenticalAcrossThreadCounts) {
  const AttentionShape shape{8, 2, 64};
  std::vector<TestCache> caches;
  const int64_t positions[] = {3000, 40, 1024, 257};
  for (int i = 0; i < 4; ++i) caches.emplace_back(DType::BF16, 2, 64, 3001, 100 + i);
  const std::vector<float> q = random_query(4 * 8, 64, 200, 2.0f);
  std::vector<std::vector<float>> ref_exact, ref_spec, ref_plain;
  std::vector<SpecResult> ref_results;
  for (int threads : {1, 2, 3}) {
    Device dev({.name = "t", .threads = threads, .cores = {}});
    std::vector<std::vector<float>> exact(4, std::vector<float>(8 * 64)), spec = exact, plain = exact;
    std::vector<SpecDecodeQuery> batch;
    std::vector<DecodeQuery> plain_batch;
    for (int i = 0; i < 4; ++i) {
      batch.push_back({{q.data() + i * 8 * 64, caches[static_cast<size_t>(i)].view(), positions[i], exact[i].data()},
                       spec[i].data()});
      plain_batch.push_back({q.data() + i * 8 * 64, caches[static_cast<size_t>(i)].view(), positions[i], plain[i].data()});
    }
    std::vector<SpecResult> results(4);
    speculative_flash_decode(dev, shape, batch, 128, 0.2f, results, [] {});
    flash_decode(dev, shape, plain_batch, 0);
    if (threads == 1) {
      ref_exact = exact;
      ref_spec = spec;
      ref_plain = plain;
      ref_results = results;
      continue;
    }
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_TRUE(bitwise_equal(exact[i], ref_exact[i])) << "threads " << threads << " seq " << i;
      EXPECT_TRUE(bitwise_equal(spec[i], ref_spec[i])) << "threads " << threads << " seq " << i;
      EXPECT_TRUE(bitwise_equal(plain[i], ref_plain[i])) << "threads " << threads << " seq " << i;
      EXPECT_EQ(std::bit_cast<uint64_t>(results[i].dist2), std::bit_cast<uint64_t>(ref_results[i].dist2));
      EXPECT_EQ(std::bit_cast<uint64_t>(results[i].norm2), std::bit_cast<uint64_t>(ref_results[i].norm2));
      EXPECT_EQ(results[i].accept, ref_results[i].accept);
    }
  }
}

TEST(Attention, BatchOfSequencesMatchesSingleCalls) {
  Device dev({.name = "t", .threads = 2, .cores = {}});
  const AttentionShape shape{8, 2, 64};
  const TestCache a(DType::F16, 2, 64, 900, 1), b(DType::Q8_0, 2, 64, 100, 2);
  const std::vector<float> qa = random_query(8, 64, 3), qb = random_query(8, 64, 4);
  std::vector<float> ea(8 * 64), sa(8 * 64), eb(8 * 64), sb(8 * 64);
  const SpecDecodeQuery batch[] = {{{qa.data(), a.view(), 899, ea.data()}, sa.data()},
                                   {{qb.data(), b.view(), 50, eb.data()}, sb.data()}};
  SpecResult results[2];
  speculative_flash_decode(dev, shape, batch, 32, 0.1f, results, [] {});
  const SpecOutputs oa = run_spec(dev, shape, qa.data(), a.view(), 899, 32, 0.1f);
  const SpecOutputs ob = run_spec(dev, shape, qb.data(), b.view(), 50, 32, 0.1f);
  EXPECT_TRUE(bitwise_equal(ea, oa.exact));
  EXPECT_TRUE(bitwise_equal(sa, oa.spec));
  EXPECT_TRUE(bitwise_equal(eb, ob.exact));
  EXPECT_TRUE(bitwise_equal(sb, ob.spec));
  EXPECT_FALSE(results[0].full_coverage);
  EXPECT_TRUE(results[1].full_coverage);
  EXPECT_EQ(results[0].dist2, oa.result.dist2);
}

// Uniform attention (q = 0): outputs are plain means of V, exact in float. Sink+window rows hold
// 3 in channel 0, middle rows 1: O_spec = 3, O_exact = 2, dist2 = 1, norm2 = 4, so the threshold
// lambda is exactly 0.5.
TEST(Attention, AcceptBitOnBothSidesOfTheThresholdAndExactlyAtIt) {
  Device dev({.name = "t", .threads = 2, .cores = {}});
  constexpr int d = 8;
  constexpr int S = 16;
  constexpr int64_t L = 4 * S;
  const AttentionShape shape{1, 1, d};
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    TestCache cache(type, 1, d, L, 1);
    for (int64_t r = 0; r < L; ++r) {
      for (int i = 0; i < d; ++i) {
        cache.k_src[static_cast<size_t>(r * d + i)] = 0.25f * static_cast<float>(i - r % 3);
        cache.v_src[static_cast<size_t>(r * d + i)] = 0.0f;
      }
      const bool middle = r >= S && r < L - S;
      cache.v_src[static_cast<size_t>(r * d)] = middle ? 1.0f : 3.0f;
      cache.store(0, r);
    }
    const std::vector<float> q(d, 0.0f);
    const SpecOutputs at = run_spec(dev, shape, q.data(), cache.view(), L - 1, S, 0.5f);
    EXPECT_EQ(at.spec[0], 3.0f);
    EXPECT_EQ(at.exact[0], 2.0f);
    EXPECT_EQ(at.result.dist2, 1.0);
    EXPECT_EQ(at.result.norm2, 4.0);
    EXPECT_TRUE(at.result.accept) << "dist2 == lambda^2 norm2 accepts (non-strict)";
    EXPECT_FALSE(at.result.full_coverage);
    EXPECT_FALSE(run_spec(dev, shape, q.data(), cache.view(), L - 1, S, 0.4999f).result.accept);
    EXPECT_TRUE(run_spec(dev, shape, q.data(), cache.view(), L - 1, S, 0.5001f).result.accept);
    EXPECT_FALSE(run_spec(dev, shape, q.data(), cache.view(), L - 1, S, 0.0f).result.accept);
  }
}

// The callback must see every O_spec written and no middle chunk read yet: it rewrites the middle
// V rows, and O_exact must reflect the new values.
TEST(Attention, SpecReadySignalComesBeforeTheMiddleIsRead) {
  Device dev({.name = "t", .threads = 2, .cores = {}});
  const AttentionShape shape{4, 1, 64};
  const int S = 32;
  TestCache a(DType::F16, 1, 64, 2000, 11), b(DType::F32, 1, 64, 2000, 12);
  const std::vector<float> qa = random_query(4, 64, 13, 2.0f), qb = random_query(4, 64, 14, 2.0f);
  const int64_t La = 2000, Lb = 40;  // b is fully covered (L <= 2S)
  std::vector<float> ea(4 * 64), sa(4 * 64), eb(4 * 64), sb(4 * 64);
  const SpecDecodeQuery batch[] = {{{qa.data(), a.view(), La - 1, ea.data()}, sa.data()},
                                   {{qb.data(), b.view(), Lb - 1, eb.data()}, sb.data()}};
  SpecResult results[2];
  RowRange storage[2];
  const std::vector<double> ref_spec_a = reference(shape, qa.data(), a.view(), sink_window_rows(La, S, storage));
  const std::vector<double> ref_b = reference_full(shape, qb.data(), b.view(), Lb);
  int calls = 0;
  speculative_flash_decode(dev, shape, batch, S, 0.1f, results, [&] {
    ++calls;
    EXPECT_LE(nmse(sa, ref_spec_a), kNmseSameCache);
    EXPECT_LE(nmse(sb, ref_b), kNmseSameCache);
    EXPECT_LE(nmse(eb, ref_b), kNmseSameCache);
    for (int64_t r = S; r < La - S; ++r) {
      for (int i = 0; i < 64; ++i) a.v_src[static_cast<size_t>(r * 64 + i)] *= -2.0f;
      a.store(0, r);
    }
  });
  EXPECT_EQ(calls, 1);
  EXPECT_LE(nmse(ea, reference_full(shape, qa.data(), a.view(), La)), kNmseSameCache);
}

TEST(Attention, StoreAndLoadRowsRoundTrip) {
  std::vector<float> src(64), back(64);
  for (int i = 0; i < 64; ++i) src[static_cast<size_t>(i)] = std::sin(0.37f * static_cast<float>(i)) * 3.0f;
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
    std::vector<uint8_t> row(row_bytes(t, 64));
    store_kv_row(t, src.data(), row.data(), 64);
    load_kv_row(t, row.data(), back.data(), 64);
    // Per-element bound: half an ulp (F16 2^-11, BF16 2^-8 relative); Q8_0: half a step (amax/254)
    // plus the f16 rounding of the scale (127 * 2^-11 steps), i.e. 0.57 of amax/127 per block.
    for (int i = 0; i < 64; ++i) {
      float amax = 0.0f;
      for (int j = i / 32 * 32; j < i / 32 * 32 + 32; ++j) amax = std::max(amax, std::fabs(src[static_cast<size_t>(j)]));
      const float x = src[static_cast<size_t>(i)];
      const float err = std::fabs(back[static_cast<size_t>(i)] - x);
      switch (t) {
        case DType::F32: EXPECT_EQ(err, 0.0f); break;
        case DType::F16: EXPECT_LE(err, std::fabs(x) * 0x1p-11f); break;
        case DType::BF16: EXPECT_LE(err, std::fabs(x) * 0x1p-8f); break;
        default: EXPECT_LE(err, amax / 127.0f * 0.57f); break;
      }
    }
  }
}

// ---- K in key blocks -------------------------------------------------------------------------

TEST(KeyBlocks, StoreAndLoadGiveTheRowValues) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    for (int d : {8, 64, 128}) {
      const size_t rb = row_bytes(t, d);
      std::vector<uint8_t> blocks(rb * 48), rows(rb * 48);
      std::vector<float> src(static_cast<size_t>(d) * 48), a(static_cast<size_t>(d)), b(static_cast<size_t>(d));
      for (auto& x : src) x = nd(rng);
      for (int64_t r = 0; r < 48; ++r) {
        store_key_row(t, true, src.data() + r * d, blocks.data(), r, d);
        store_key_row(t, false, src.data() + r * d, rows.data(), r, d);
      }
      for (int64_t r = 0; r < 48; ++r) {
        load_key_row(t, true, blocks.data(), r, a.data(), d);
        load_kv_row(t, rows.data() + r * rb, b.data(), d);
        ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << dtype_name(t) << " d " << d;
      }
      // Dimension j of the 16 rows of a block is contiguous.
      if (t == DType::F32) {
        EXPECT_EQ(reinterpret_cast<const float*>(blocks.data())[1], src[static_cast<size_t>(d)]);
      }
    }
  }
  std::vector<uint8_t> buf(34 * 2);
  const float x[32] = {};
  EXPECT_THROW(store_key_row(DType::Q8_0, true, x, buf.data(), 0, 32), Error);
}

TEST(KeyBlocks, MatchReferenceAcrossTypesGqaLengthsAndS) {
  Device dev({.name = "t", .threads = 2, .cores = {}});
  uint32_t seed = 500;
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    for (int gqa : {1, 2, 3, 4, 5, 6, 7, 8, 12}) {  // 12: beyond the pipelined loop's 8 heads
      for (int d : {64, 128}) {
        const AttentionShape shape{2 * gqa, 2, d};
        const TestCache cache(type, 2, d, 2100, seed++, /*blocks=*/true);
        const std::vector<float> q = random_query(shape.n_heads, d, seed++, 2.0f);
        for (int64_t L : {1, 15, 16, 17, 33, 100, 1025, 2100}) check_point(dev, shape, cache, q, L, 0, L == 2100);
        for (int S : {16, 40, 128}) {
          for (int64_t L : {int64_t{2 * S + 1}, int64_t{3 * S + 7}, int64_t{1300}}) {
            check_point(dev, shape, cache, q, L, S, false);
          }
        }
      }
    }
  }
}

TEST(KeyBlocks, SameResultsAsRowsUpToRounding) {
  Device dev({.name = "t", .threads = 2, .cores = {}});
  const AttentionShape shape{32, 8, 128};
  const TestCache rows(DType::F16, 8, 128, 4096, 9, false);
  const TestCache blocks(DType::F16, 8, 128, 4096, 9, true);
  const std::vector<float> q = random_query(32, 128, 10, 3.0f);
  for (int64_t L : {int64_t{37}, int64_t{4096}}) {
    const std::vector<float> a = run_plain(dev, shape, q.data(), rows.view(), L - 1, 128);
    const std::vector<float> b = run_plain(dev, shape, q.data(), blocks.view(), L - 1, 128);
    EXPECT_LE(nmse(b, std::vector<double>(a.begin(), a.end())), kNmseSameCache) << L;
  }
}

TEST(KeyBlocks, WindowViewsStartingInsideABlock) {
  // As the model's sliding-window layers do: K moved by whole blocks plus k_first rows, V by rows.
  Device dev({.name = "t", .threads = 2, .cores = {}});
  const AttentionShape shape{8, 2, 64};
  const TestCache blocks(DType::F16, 2, 64, 1200, 41, true);
  const TestCache rows(DType::F16, 2, 64, 1200, 41, false);
  const std::vector<float> q = random_query(8, 64, 42, 2.0f);
  for (int64_t first : {int64_t{1}, int64_t{15}, int64_t{16}, int64_t{37}, int64_t{500}}) {
    KvCacheView bv = blocks.view();
    const int64_t k_rows = first - first % kKeyBlockRows;
    bv.k = static_cast<const uint8_t*>(bv.k) + static_cast<size_t>(k_rows) * bv.row_bytes();
    bv.k_first = first - k_rows;
    bv.v = static_cast<const uint8_t*>(bv.v) + static_cast<size_t>(first) * bv.row_bytes();
    KvCacheView rv = rows.view();
    rv.k = static_cast<const uint8_t*>(rv.k) + static_cast<size_t>(first) * rv.row_bytes();
    rv.v = static_cast<const uint8_t*>(rv.v) + static_cast<size_t>(first) * rv.row_bytes();
    for (int64_t L : {int64_t{1}, int64_t{50}, int64_t{600}}) {
      const std::vector<double> ref = reference_full(shape, q.data(), rv, L);
      EXPECT_LE(nmse(run_plain(dev, shape, q.data(), bv, L - 1, 0), ref), kNmseSameCache) << first << " " << L;
      EXPECT_LE(nmse(run_plain(dev, shape, q.data(), bv, L - 1, 16), ref), kNmseSameCache) << first << " " << L;
      const std::vector<double> ref_b = reference_full(shape, q.data(), bv, L);  // same rows, read through blocks
      EXPECT_EQ(std::memcmp(ref_b.data(), ref.data(), ref.size() * sizeof(double)), 0) << first << " " << L;
    }
  }
}

TEST(KeyBlocks, BitwiseIdenticalAcrossThreadCountsAndEverySimdLevelAgrees) {
  for (int gqa : {4, 8}) {
    const AttentionShape shape{2 * gqa, 2, 128};
    const TestCache cache(DType::BF16, 2, 128, 3001, 60 + gqa, true);
    const std::vector<float> q = random_query(shape.n_heads, 128, 70, 2.0f);
    std::vector<float> ref_exact, ref_spec;
    for (int threads : {1, 2, 3}) {
      Device dev({.name = "t", .threads = threads, .cores = {}});
      const SpecOutputs o = run_spec(dev, shape, q.data(), cache.view(), 2999, 128, 0.2f);
      if (threads == 1) {
        ref_exact = o.exact;
        ref_spec = o.spec;
        continue;
      }
      EXPECT_TRUE(bitwise_equal(o.exact, ref_exact)) << threads;
      EXPECT_TRUE(bitwise_equal(o.spec, ref_spec)) << threads;
    }
    Device dev({.name = "t", .threads = 1, .cores = {}});
    for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2}) {
      if (set_simd_level(level) != level) continue;
      const SpecOutputs o = run_spec(dev, shape, q.data(), cache.view(), 2999, 128, 0.2f);
      std::vector<double> e(ref_exact.begin(), ref_exact.end());
      EXPECT_LE(nmse(o.exact, e), kNmseSameCache);
    }
    set_simd_level(SimdLevel::kAvx512);
  }
}

TEST(KeyBlocks, LayoutFollowsTheLevelInEffect) {
  // Key blocks where the level's kernel reads them directly: AVX2 and AVX-512 at head_dim 64/128.
  set_simd_level(SimdLevel::kScalar);
  EXPECT_FALSE(prefer_key_blocks(DType::F16, 128));
  for (SimdLevel level : {SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (set_simd_level(level) != level) continue;  // CPU lacks it
    EXPECT_TRUE(prefer_key_blocks(DType::F16, 128)) << simd_level_name(level);
    EXPECT_TRUE(prefer_key_blocks(DType::BF16, 64)) << simd_level_name(level);
    EXPECT_TRUE(prefer_key_blocks(DType::F32, 128)) << simd_level_name(level);
    EXPECT_FALSE(prefer_key_blocks(DType::Q8_0, 128)) << simd_level_name(level);
    EXPECT_FALSE(prefer_key_blocks(DType::F16, 96)) << simd_level_name(level);
  }
  set_simd_level(SimdLevel::kAvx512);
}

TEST(KeyBlocks, EveryLevelReadsBothLayoutsDeterministically) {
  // A cache made at one level is read by every level (rows and key blocks), each within float
  // rounding of the reference and bitwise the same at 1 and 3 threads. GQA 1, 3, 4, 6, 8 and 12
  // cover the pipelined loops (4-8 heads), their remainders and the unpipelined fallbacks; L 1100
  // with S 40 gives full tiles (pipelined), partial tiles and windows off the block grid.
  Device dev1({.name = "t", .threads = 1, .cores = {}});
  Device dev3({.name = "t", .threads = 3, .cores = {}});
  uint32_t seed = 900;
  for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (set_simd_level(level) != level) continue;  // CPU lacks it
    for (DType type : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
      for (bool blocks : {false, true}) {
        if (blocks && !key_blocks_supported(type)) continue;
        for (int gqa : {1, 3, 4, 6, 8, 12}) {
          for (int d : {64, 128}) {
            const AttentionShape shape{2 * gqa, 2, d};
            const TestCache cache(type, 2, d, 1100, seed++, blocks);
            const std::vector<float> q = random_query(shape.n_heads, d, seed++, 2.0f);
            const std::string where = std::string(simd_level_name(level)) + (blocks ? " blocks " : " rows ") +
                                      label(type, shape.n_heads, 2, d, 1100, 40);
            const SpecOutputs a = run_spec(dev1, shape, q.data(), cache.view(), 1099, 40, 0.1f);
            const SpecOutputs b = run_spec(dev3, shape, q.data(), cache.view(), 1099, 40, 0.1f);
            EXPECT_TRUE(bitwise_equal(a.exact, b.exact)) << where;
            EXPECT_TRUE(bitwise_equal(a.spec, b.spec)) << where;
            EXPECT_LE(nmse(a.exact, reference_full(shape, q.data(), cache.view(), 1100)), kNmseSameCache) << where;
            EXPECT_TRUE(bitwise_equal(run_plain(dev3, shape, q.data(), cache.view(), 1099, 40), a.exact)) << where;
          }
        }
      }
    }
  }
  set_simd_level(SimdLevel::kAvx512);
}

TEST(KeyBlocks, BadLayoutsAreRejected) {
  Device dev({.name = "t", .threads = 1, .cores = {}});
  const AttentionShape shape{4, 1, 64};
  const TestCache cache(DType::F16, 1, 64, 64, 1, true);
  const std::vector<float> q = random_query(4, 64, 2);
  KvCacheView v = cache.view();
  v.k_first = 16;
  EXPECT_THROW(run_plain(dev, shape, q.data(), v, 10, 0), Error);
  v = cache.view();
  v.capacity = 60;
  EXPECT_THROW(run_plain(dev, shape, q.data(), v, 10, 0), Error);
  v = cache.view();
  v.k_blocks = false;
  v.k_first = 3;
  EXPECT_THROW(run_plain(dev, shape, q.data(), v, 10, 0), Error);
  const TestCache q8(DType::Q8_0, 1, 64, 64, 1);
  v = q8.view();
  v.k_blocks = true;
  EXPECT_THROW(run_plain(dev, shape, q.data(), v, 10, 0), Error);
}

TEST(Attention, RejectsBadInput) {
  Device dev({.name = "t", .threads = 1, .cores = {}});
  EXPECT_THROW(check_kv_type(DType::Q8_0, 48), Error);
  EXPECT_THROW(check_kv_type(DType::Q4_0, 64), Error);
  EXPECT_NO_THROW(check_kv_type(DType::Q8_0, 64));
  const AttentionShape shape{4, 2, 32};
  const TestCache cache(DType::F16, 2, 32, 10, 1);
  const std::vector<float> q(4 * 32, 0.0f);
  std::vector<float> out(4 * 32), spec(4 * 32);
  const DecodeQuery past_end{q.data(), cache.view(), 10, out.data()};
  EXPECT_THROW(flash_decode(dev, shape, {&past_end, 1}), Error);
  const DecodeQuery ok{q.data(), cache.view(), 9, out.data()};
  EXPECT_THROW(flash_decode(dev, AttentionShape{3, 2, 32}, {&ok, 1}), Error);
  EXPECT_THROW(flash_decode(dev, AttentionShape{4, 2, 64}, {&ok, 1}), Error);
  const SpecDecodeQuery sq{ok, spec.data()};
  SpecResult r;
  EXPECT_THROW(speculative_flash_decode(dev, shape, {&sq, 1}, 0, 0.1f, {&r, 1}, [] {}), Error);
  EXPECT_THROW(speculative_flash_decode(dev, shape, {&sq, 1}, 16, -1.0f, {&r, 1}, [] {}), Error);
  EXPECT_THROW(speculative_flash_decode(dev, shape, {&sq, 1}, 16, 0.1f, {}, [] {}), Error);
  EXPECT_NO_THROW(speculative_flash_decode(dev, shape, {&sq, 1}, 16, 0.1f, {&r, 1}, [] {}));
  // Nested use from the callback would share the calling thread's workspace: refused.
  EXPECT_THROW(speculative_flash_decode(dev, shape, {&sq, 1}, 16, 0.1f, {&r, 1},
                                        [&] { flash_decode(dev, shape, {&ok, 1}); }),
               Error);
  EXPECT_NO_THROW(flash_decode(dev, shape, {&ok, 1}));
}

}  // namespace
}  // namespace alspec

namespace alspec {
namespace {

// group_terms: each KV group's {dist2, norm2}; summed from 0 in group order they are bitwise the
// result's sums (what tensor-parallel ranks holding disjoint groups rebuild after a gather).
TEST(Attention, GroupTermsSumToTheCheckBitwise) {
  Device dev({.name = "t", .threads = 3, .cores = {}});
  const AttentionShape shape{8, 4, 64};
  const TestCache a(DType::F16, 4, 64, 700, 11), b(DType::F32, 4, 64, 40, 12);
  const std::vector<float> qa = random_query(8, 64, 13), qb = random_query(8, 64, 14);
  std::vector<float> ea(8 * 64), sa(8 * 64), eb(8 * 64), sb(8 * 64);
  const SpecDecodeQuery batch[] = {{{qa.data(), a.view(), 650, ea.data()}, sa.data()},
                                   {{qb.data(), b.view(), 39, eb.data()}, sb.data()}};
  SpecResult results[2];
  std::vector<double> terms(2 * 4 * 2, -1.0);
  speculative_flash_decode(dev, shape, batch, 16, 0.1f, results, [] {}, terms);
  for (size_t s = 0; s < 2; ++s) {
    double d2 = 0, n2 = 0;
    for (size_t g = 0; g < 4; ++g) {
      EXPECT_GE(terms[(s * 4 + g) * 2], 0.0);
      EXPECT_GT(terms[(s * 4 + g) * 2 + 1], 0.0);
      d2 += terms[(s * 4 + g) * 2];
      n2 += terms[(s * 4 + g) * 2 + 1];
    }
    EXPECT_EQ(std::bit_cast<uint64_t>(d2), std::bit_cast<uint64_t>(results[s].dist2)) << "sequence " << s;
    EXPECT_EQ(std::bit_cast<uint64_t>(n2), std::bit_cast<uint64_t>(results[s].norm2)) << "sequence " << s;
  }
  EXPECT_GT(results[0].dist2, 0.0);
  std::vector<double> wrong(3);
  EXPECT_THROW(speculative_flash_decode(dev, shape, batch, 16, 0.1f, results, [] {}, wrong), Error);
}

}  // namespace
}  // namespace alspec
