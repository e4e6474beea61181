// The quest predictor: its layout keeps the 2S budget, the kernel's page choice and O_spec match
// the plain reference twin (quest_rows_reference), O_exact stays exact, and results are bitwise
// independent of threads and equal to flash_decode with the same plan.
#include "alspec/kernels/spec_predictor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/core/half.h"
#include "alspec/kernels/attention_reference.h"
#include "alspec/kernels/cpu_features.h"
#include "attention_test_util.h"

namespace alspec {
namespace {

using attention_test::nmse;
using attention_test::random_query;
using attention_test::reference;
using attention_test::reference_full;
using attention_test::TestCache;

constexpr double kNmseSameCache = 1e-10;

// Keys whose pages differ in scale (so page bounds differ clearly, as on real models where some
// pages hold large keys), stored again, and the page bounds KvCache::store would keep.
struct PagedCache {
  TestCache cache;
  std::vector<KeyBound> key_pages;

  PagedCache(DType type, int n_kv, int d, int64_t cap, uint32_t seed, bool blocks)
      : cache(type, n_kv, d, cap, seed, blocks) {
    std::mt19937 rng(seed + 1000);
    std::uniform_real_distribution<float> scale(0.25f, 2.0f);
    for (int h = 0; h < n_kv; ++h) {
      for (int64_t page = 0; page < key_pages_for_rows(cache.capacity); ++page) {
        const float s = scale(rng);
        for (int64_t r = page * kKeyPageRows; r < std::min(cache.capacity, (page + 1) * kKeyPageRows); ++r) {
          float* row = &cache.k_src[(static_cast<size_t>(h) * static_cast<size_t>(cache.capacity) + static_cast<size_t>(r)) *
                                    static_cast<size_t>(d)];
          for (int i = 0; i < d; ++i) row[i] *= s;
          cache.store(h, r);
        }
      }
    }
    rebuild_bounds();
  }

  // The bounds KvCache::store keeps: each stored key, read back, folded into its page.
  void rebuild_bounds() {
    const KvCacheView v = cache.view();
    const int d = v.head_dim;
    const size_t per_head = static_cast<size_t>(key_pages_for_rows(v.capacity)) * key_page_record_bytes(d);
    key_pages.assign(static_cast<size_t>(v.n_kv_heads) * per_head, 0);
    std::vector<float> key(static_cast<size_t>(d)), staging(2 * static_cast<size_t>(d));
    for (int h = 0; h < v.n_kv_heads; ++h) {
      for (int64_t r = 0; r < v.capacity; ++r) {
        load_key_row(v.type, v.k_blocks, v.k_row(h, 0), r, key.data(), d);
        update_key_page_bounds(key_pages.data() + static_cast<size_t>(h) * per_head, staging.data(), r, key.data(), d);
      }
    }
  }

  KvCacheView view() const {
    KvCacheView v = cache.view();
    v.key_pages = key_pages.data();
    v.key_pages_per_head = key_pages_for_rows(v.capacity);
    return v;
  }
};

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct QuestRun {
  std::vector<float> exact, spec;
  SpecResult result;
};

QuestRun run_quest(Device& dev, const AttentionShape& shape, const float* q, const KvCacheView& kv, int64_t pos, int S,
                   float lambda) {
  const size_t n = static_cast<size_t>(shape.n_heads) * static_cast<size_t>(shape.head_dim);
  QuestRun r{std::vector<float>(n), std::vector<float>(n), {}};
  const SpecDecodeQuery sq{{q, kv, pos, r.exact.data()}, r.spec.data()};
  speculative_flash_decode(dev, shape, std::span<const SpecDecodeQuery>(&sq, 1), S, lambda,
                           std::span<SpecResult>(&r.result, 1), [] {}, {}, SpecPredictor::kQuestPages);
  return r;
}

TEST(SpecPredictor, NamesParseAndUnknownNamesAreRejected) {
  EXPECT_EQ(parse_spec_predictor("sink-window"), SpecPredictor::kSinkWindow);
  EXPECT_EQ(parse_spec_predictor("quest"), SpecPredictor::kQuestPages);
  EXPECT_STREQ(spec_predictor_name(SpecPredictor::kQuestPages), "quest");
  try {
    parse_spec_predictor("oracle");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sink-window or quest"), std::string::npos) << e.what();
  }
}

TEST(SpecPredictor, QuestLayoutKeepsTheBudgetAndTheNewestRows) {
  for (int S : {64, 80, 96, 128, 256}) {
    for (int64_t L = 2 * S + 1; L < 2 * S + 2000; L += 7) {
      const QuestLayout q = quest_layout(L, S);
      const std::string where = "S " + std::to_string(S) + " L " + std::to_string(L);
      EXPECT_EQ(q.sink_end, kKeyPageRows) << where;
      EXPECT_EQ(L - q.window_begin, S / 2) << where;  // the window is the last S/2 rows
      EXPECT_LE(q.sink_end + (L - q.window_begin) + q.n_pages * kKeyPageRows, 2 * S) << where;
      const int64_t complete = q.window_begin / kKeyPageRows * kKeyPageRows;  // the pages end here
      EXPECT_LE(q.n_pages * kKeyPageRows, complete - q.sink_end) << where;
      // The budget is used up to less than one page (unless every middle page is taken).
      if (q.n_pages * kKeyPageRows < complete - q.sink_end) {
        EXPECT_GT(q.sink_end + (L - q.window_begin) + (q.n_pages + 1) * kKeyPageRows, 2 * S) << where;
      }
    }
  }
}

// The 8-bit encoding bounds the exact values (rounded outwards), fits [-127, 127] and is tight to
// about two steps of the page's scale.
TEST(SpecPredictor, PageRecordsRoundOutwards) {
  std::mt19937 rng(5);
  for (int d : {8, 64, 128}) {
    for (int trial = 0; trial < 200; ++trial) {
      std::normal_distribution<float> nd(0.0f, trial % 3 == 0 ? 0.01f : trial % 3 == 1 ? 1.0f : 30.0f);
      std::vector<float> lo(static_cast<size_t>(d)), hi(static_cast<size_t>(d));
      for (int i = 0; i < d; ++i) {
        const float a = nd(rng), b = trial % 7 == 0 ? a : nd(rng);  // sometimes lo == hi
        lo[static_cast<size_t>(i)] = std::min(a, b);
        hi[static_cast<size_t>(i)] = std::max(a, b);
      }
      if (trial == 0) std::fill(lo.begin(), lo.end(), 0.0f), std::fill(hi.begin(), hi.end(), 0.0f);
      std::vector<KeyBound> rec(key_page_record_bytes(d));
      encode_key_page(lo.data(), hi.data(), d, rec.data());
      const float s = key_page_scale(rec.data(), d);
      float amax = 0.0f;
      for (int i = 0; i < d; ++i) amax = std::max({amax, std::abs(lo[static_cast<size_t>(i)]), std::abs(hi[static_cast<size_t>(i)])});
      EXPECT_GE(127.0f * s, amax);
      const auto* b = reinterpret_cast<const int8_t*>(rec.data());
      for (int i = 0; i < d; ++i) {
        const std::string where = "d " + std::to_string(d) + " trial " + std::to_string(trial) + " i " + std::to_string(i);
        EXPECT_GE(b[i], -127) << where;
        EXPECT_LE(b[d + i], 127) << where;
        EXPECT_LE(static_cast<float>(b[i]) * s, lo[static_cast<size_t>(i)]) << where;
        EXPECT_GE(static_cast<float>(b[d + i]) * s, hi[static_cast<size_t>(i)]) << where;
        EXPECT_LE(lo[static_cast<size_t>(i)] - static_cast<float>(b[i]) * s, 2.0f * s) << where;
        EXPECT_LE(static_cast<float>(b[d + i]) * s - hi[static_cast<size_t>(i)], 2.0f * s) << where;
      }
    }
  }
}

// Each complete page's record is the encoding of its exact min and max (built row by row).
TEST(SpecPredictor, PageRecordsEncodeTheMinAndMaxOfEachPage) {
  const int d = 8;
  const int64_t rows = 3 * kKeyPageRows + 9;  // three complete pages and a partial one
  const size_t rb = key_page_record_bytes(d);
  std::vector<KeyBound> pages(4 * rb, 0);
  std::vector<float> key(d), staging(2 * d);
  auto value = [](int64_t r, int i) { return static_cast<float>((r * 7 + i * 3) % 11) - 5.0f + 0.01f * static_cast<float>(r); };
  for (int64_t r = 0; r < rows; ++r) {
    for (int i = 0; i < d; ++i) key[static_cast<size_t>(i)] = value(r, i);
    update_key_page_bounds(pages.data(), staging.data(), r, key.data(), d);
  }
  for (int64_t p = 0; p < 3; ++p) {
    std::vector<float> lo(d, 1e9f), hi(d, -1e9f);
    for (int i = 0; i < d; ++i) {
      for (int64_t r = p * kKeyPageRows; r < (p + 1) * kKeyPageRows; ++r) {
        lo[static_cast<size_t>(i)] = std::min(lo[static_cast<size_t>(i)], value(r, i));
        hi[static_cast<size_t>(i)] = std::max(hi[static_cast<size_t>(i)], value(r, i));
      }
    }
    std::vector<KeyBound> want(rb);
    encode_key_page(lo.data(), hi.data(), d, want.data());
    EXPECT_EQ(std::memcmp(want.data(), pages.data() + static_cast<size_t>(p) * rb, rb), 0) << "page " << p;
  }
  // The partial page's exact bounds are staged.
  for (int i = 0; i < d; ++i) {
    float lo = 1e9f, hi = -1e9f;
    for (int64_t r = 3 * kKeyPageRows; r < rows; ++r) {
      lo = std::min(lo, value(r, i));
      hi = std::max(hi, value(r, i));
    }
    EXPECT_EQ(staging[static_cast<size_t>(i)], lo);
    EXPECT_EQ(staging[static_cast<size_t>(d + i)], hi);
  }
}

// quantize_group_query is its definition: Q+ and Q- summed in head order, times
// limit / max|Q|, rounded to nearest with ties to even (std::nearbyint) and clamped; also where
// the scaled values fall exactly on halves, and above the head dims kept on the stack.
TEST(SpecPredictor, QueryQuantisationRoundsAsNearbyint) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int d : {8, 64, 128, 256, 320}) {
    for (int n_rep : {1, 4, 7}) {
      for (int trial = 0; trial < 20; ++trial) {
        std::vector<float> q(static_cast<size_t>(n_rep * d));
        for (auto& x : q) x = nd(rng);
        if (trial % 2 == 1) {
          // Exact halves: max|Q| = limit makes the factor 1, and the other values are k / 2.
          std::fill(q.begin(), q.end(), 0.0f);
          q[0] = static_cast<float>(quest_query_limit(d));
          for (int i = 1; i < d; ++i) q[static_cast<size_t>(i)] = static_cast<float>(i % 9 - 4) * 0.5f;
        }
        std::vector<int16_t> got(2 * static_cast<size_t>(d));
        quantize_group_query(q.data(), n_rep, d, got.data());
        std::vector<float> neg(static_cast<size_t>(d), 0.0f), pos(static_cast<size_t>(d), 0.0f);
        for (int h = 0; h < n_rep; ++h) {
          for (int i = 0; i < d; ++i) {
            const float x = q[static_cast<size_t>(h * d + i)];
            pos[static_cast<size_t>(i)] += std::max(x, 0.0f);
            neg[static_cast<size_t>(i)] += std::min(x, 0.0f);
          }
        }
        float qmax = 0.0f;
        for (int i = 0; i < d; ++i) qmax = std::max({qmax, pos[static_cast<size_t>(i)], -neg[static_cast<size_t>(i)]});
        const auto limit = static_cast<float>(quest_query_limit(d));
        const float f = qmax > 0.0f ? limit / qmax : 0.0f;
        for (int i = 0; i < d; ++i) {
          const std::string where = "d " + std::to_string(d) + " n_rep " + std::to_string(n_rep) + " trial " +
                                    std::to_string(trial) + " i " + std::to_string(i);
          EXPECT_EQ(got[static_cast<size_t>(i)],
                    static_cast<int16_t>(std::clamp(std::nearbyint(neg[static_cast<size_t>(i)] * f), -limit, limit)))
              << where;
          EXPECT_EQ(got[static_cast<size_t>(d + i)],
                    static_cast<int16_t>(std::clamp(std::nearbyint(pos[static_cast<size_t>(i)] * f), -limit, limit)))
              << where;
        }
      }
    }
  }
}

// The selection into a caller's buffer (the kernel's path) picks what a full sort of the bounds
// picks, over more pages than one run of dots (512) and with more pages to keep than fit the
// stack list (128): best bound first, ties to the lower page, returned ascending.
TEST(SpecPredictor, PageSelectionKeepsTheBestPagesAcrossRuns) {
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int d : {64, 128}) {
    for (int64_t L : {int64_t{4096}, int64_t{40000}}) {
      for (int S : {128, 4096}) {
        const QuestLayout lay = quest_layout(L, S);
        const size_t rb = key_page_record_bytes(d);
        const int64_t n_pages = key_pages_for_rows(L);
        std::vector<KeyBound> records(static_cast<size_t>(n_pages) * rb);
        std::vector<float> key(static_cast<size_t>(d)), staging(2 * static_cast<size_t>(d));
        for (int64_t r = 0; r < n_pages * kKeyPageRows; ++r) {
          // Few distinct values: many equal bounds, so the ties matter.
          for (auto& x : key) x = std::round(nd(rng) * 2.0f) * 0.5f;
          update_key_page_bounds(records.data(), staging.data(), r, key.data(), d);
        }
        const int n_rep = 4;
        std::vector<float> q(static_cast<size_t>(n_rep * d));
        for (auto& x : q) x = nd(rng);
        std::vector<int16_t> qi(2 * static_cast<size_t>(d));
        quantize_group_query(q.data(), n_rep, d, qi.data());
        std::vector<std::pair<double, int64_t>> all;  // (-bound, page)
        for (int64_t p = lay.sink_end / kKeyPageRows; p < lay.window_begin / kKeyPageRows; ++p) {
          const auto* b = reinterpret_cast<const int8_t*>(records.data() + static_cast<size_t>(p) * rb);
          int64_t dot = 0;
          for (int i = 0; i < 2 * d; ++i) dot += int64_t{qi[static_cast<size_t>(i)]} * b[i];
          all.emplace_back(-(static_cast<double>(dot) *
                             static_cast<double>(key_page_scale(records.data() + static_cast<size_t>(p) * rb, d))),
                           p);
        }
        std::sort(all.begin(), all.end());
        std::vector<int64_t> want;
        for (int64_t i = 0; i < lay.n_pages; ++i) want.push_back(all[static_cast<size_t>(i)].second);
        std::sort(want.begin(), want.end());
        std::vector<int64_t> got(static_cast<size_t>(lay.n_pages) + 1, -1);
        const int64_t n = select_key_pages(q.data(), n_rep, d, records.data(), lay, got.data());
        const std::string where = "d " + std::to_string(d) + " L " + std::to_string(L) + " S " + std::to_string(S);
        ASSERT_EQ(n, lay.n_pages) << where;
        EXPECT_EQ(got[static_cast<size_t>(n)], -1) << where;  // nothing written past the count
        got.resize(static_cast<size_t>(n));
        EXPECT_EQ(got, want) << where;
        std::vector<int64_t> as_vector;
        select_key_pages(q.data(), n_rep, d, records.data(), lay, as_vector);
        EXPECT_EQ(as_vector, want) << where;
      }
    }
  }
}

// The selection is integer arithmetic: every SIMD level picks the same pages.
TEST(SpecPredictor, PageSelectionIsTheSameAtEverySimdLevel) {
  const SimdLevel before = set_simd_level(SimdLevel::kAvx512);
  for (int d : {32, 64, 128, 40}) {
    const AttentionShape shape{8, 2, d};
    const int64_t L = 6000;
    const PagedCache cache(DType::F16, 2, d, L, 17, false);
    const KvCacheView kv = cache.view();
    const std::vector<float> q = random_query(8, d, 3, 1.5f);
    for (int S : {64, 128, 512}) {
      const QuestLayout lay = quest_layout(L, S);
      for (int g = 0; g < 2; ++g) {
        std::vector<std::vector<int64_t>> picked;
        for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
          set_simd_level(level);
          std::vector<int64_t> pages;
          select_key_pages(q.data() + static_cast<size_t>(g * 4 * d), 4, d, kv.head_key_pages(g), lay, pages);
          EXPECT_EQ(static_cast<int64_t>(pages.size()), lay.n_pages);
          picked.push_back(pages);
        }
        EXPECT_EQ(picked[0], picked[1]) << "d " << d << " S " << S << " group " << g;
        EXPECT_EQ(picked[0], picked[2]) << "d " << d << " S " << S << " group " << g;
        const std::vector<RowRange> rows = quest_rows_reference(shape, q.data(), kv, g, L, S);
        ASSERT_EQ(rows.size(), picked[0].size() + 2);
        for (size_t i = 0; i < picked[0].size(); ++i) EXPECT_EQ(picked[0][i] * kKeyPageRows, rows[i + 1].begin);
      }
    }
  }
  set_simd_level(before);
}

// The kernel's pages, O_spec and O_exact against the reference twin, per KV group.
TEST(SpecPredictor, QuestMatchesTheReferenceTwin) {
  Device dev({.name = "t", .threads = 2, .cores = {}});
  struct Case {
    DType type;
    bool blocks;
    AttentionShape shape;
    int64_t L;
    int S;
  };
  const Case cases[] = {{DType::F16, true, {8, 2, 64}, 3001, 64},    {DType::F32, false, {4, 4, 32}, 700, 64},
                        {DType::BF16, true, {14, 2, 64}, 5000, 128}, {DType::Q8_0, false, {8, 1, 64}, 1500, 96},
                        {DType::F16, false, {6, 2, 128}, 2048, 128}, {DType::F16, true, {32, 8, 128}, 2500, 256}};
  for (const Case& c : cases) {
    const std::string where = std::string(dtype_name(c.type)) + " L " + std::to_string(c.L) + " S " + std::to_string(c.S);
    const PagedCache cache(c.type, c.shape.n_kv_heads, c.shape.head_dim, c.L, 7, c.blocks);
    const KvCacheView kv = cache.view();
    const std::vector<float> q = random_query(c.shape.n_heads, c.shape.head_dim, 11, 1.5f);
    const QuestRun run = run_quest(dev, c.shape, q.data(), kv, c.L - 1, c.S, 0.1f);
    EXPECT_FALSE(run.result.full_coverage) << where;
    EXPECT_LE(nmse(run.exact, reference_full(c.shape, q.data(), kv, c.L)), kNmseSameCache) << where;
    const int n_rep = c.shape.n_heads / c.shape.n_kv_heads;
    const auto group_floats = static_cast<size_t>(n_rep * c.shape.head_dim);
    for (int g = 0; g < c.shape.n_kv_heads; ++g) {
      const std::vector<RowRange> rows = quest_rows_reference(c.shape, q.data(), kv, g, c.L, c.S);
      // The kernel's own page choice.
      std::vector<int64_t> pages;
      const QuestLayout lay = quest_layout(c.L, c.S);
      select_key_pages(q.data() + g * group_floats, n_rep, c.shape.head_dim, kv.head_key_pages(g), lay, pages);
      ASSERT_EQ(pages.size() + 2, rows.size()) << where;
      for (size_t i = 0; i < pages.size(); ++i) EXPECT_EQ(pages[i] * kKeyPageRows, rows[i + 1].begin) << where;
      const std::vector<double> ref = reference(c.shape, q.data(), kv, rows);
      const std::vector<float> spec_g(run.spec.begin() + static_cast<ptrdiff_t>(g * group_floats),
                                      run.spec.begin() + static_cast<ptrdiff_t>((g + 1) * group_floats));
      const std::vector<double> ref_g(ref.begin() + static_cast<ptrdiff_t>(g * group_floats),
                                      ref.begin() + static_cast<ptrdiff_t>((g + 1) * group_floats));
      EXPECT_LE(nmse(spec_g, ref_g), kNmseSameCache) << where << " group " << g;
    }
    // The check as specified, over all heads.
    double d2 = 0.0, n2 = 0.0;
    for (size_t i = 0; i < run.exact.size(); ++i) {
      d2 += (static_cast<double>(run.spec[i]) - run.exact[i]) * (static_cast<double>(run.spec[i]) - run.exact[i]);
      n2 += static_cast<double>(run.exact[i]) * run.exact[i];
    }
    EXPECT_NEAR(run.result.dist2, d2, 1e-12 * (d2 + n2)) << where;
    EXPECT_EQ(run.result.accept, run.result.dist2 <= 0.01 * run.result.norm2) << where;
  }
}

// Query-aware: when one middle page holds keys aligned with the query (a "passkey" the query
// looks for) among small unrelated keys, quest attends to it and sink-window does not: quest's
// O_spec passes the check, sink-window's fails.
TEST(SpecPredictor, QuestFindsTheRelevantPage) {
  Device dev({.name = "t", .threads = 1, .cores = {}});
  const AttentionShape shape{1, 1, 64};
  const int64_t L = 4000;
  const int S = 64;
  PagedCache cache(DType::F32, 1, 64, L, 3, false);
  const std::vector<float> q = random_query(1, 64, 5, 1.0f);
  for (int64_t r = 0; r < L; ++r) {
    for (int i = 0; i < 64; ++i) {
      float& k = cache.cache.k_src[static_cast<size_t>(r * 64 + i)];
      k = r / kKeyPageRows == 100 ? 3.0f * q[static_cast<size_t>(i)] : 0.3f * k;
    }
    cache.cache.store(0, r);
  }
  cache.rebuild_bounds();
  const QuestRun quest = run_quest(dev, shape, q.data(), cache.view(), L - 1, S, 0.1f);
  std::vector<float> exact(64), spec(64);
  const SpecDecodeQuery sq{{q.data(), cache.view(), L - 1, exact.data()}, spec.data()};
  SpecResult sw{};
  speculative_flash_decode(dev, shape, std::span<const SpecDecodeQuery>(&sq, 1), S, 0.1f, std::span<SpecResult>(&sw, 1),
                           [] {});
  EXPECT_TRUE(quest.result.accept);
  EXPECT_FALSE(sw.accept);
  EXPECT_LT(quest.result.dist2 * 100.0, sw.dist2);
}

TEST(SpecPredictor, QuestBitwiseAcrossThreadsBatchesAndEqualToFlashDecodeWithItsPlan) {
  const AttentionShape shape{8, 2, 64};
  std::vector<PagedCache> caches;
  const int64_t positions[] = {3000, 40, 1024, 257};
  for (int i = 0; i < 4; ++i) caches.emplace_back(DType::F16, 2, 64, 3001, 100 + i, i % 2 == 0);
  const std::vector<float> q = random_query(4 * 8, 64, 200, 2.0f);
  std::vector<std::vector<float>> ref_exact, ref_spec;
  std::vector<SpecResult> ref_results;
  for (int threads : {1, 2, 3}) {
    Device dev({.name = "t", .threads = threads, .cores = {}});
    std::vector<std::vector<float>> exact(4, std::vector<float>(8 * 64)), spec = exact, plain = exact;
    std::vector<SpecDecodeQuery> batch;
    std::vector<DecodeQuery> plain_batch;
    for (size_t i = 0; i < 4; ++i) {
      batch.push_back({{q.data() + i * 8 * 64, caches[i].view(), positions[i], exact[i].data()}, spec[i].data()});
      plain_batch.push_back({q.data() + i * 8 * 64, caches[i].view(), positions[i], plain[i].data()});
    }
    std::vector<SpecResult> results(4);
    speculative_flash_decode(dev, shape, batch, 64, 0.2f, results, [] {}, {}, SpecPredictor::kQuestPages);
    flash_decode(dev, shape, plain_batch, 64, SpecPredictor::kQuestPages);
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_TRUE(bitwise_equal(plain[i], exact[i])) << "threads " << threads << " seq " << i;
      // One sequence alone gives the same bits as inside the batch.
      Device one({.name = "o", .threads = threads, .cores = {}});
      const QuestRun alone = run_quest(one, shape, q.data() + i * 8 * 64, caches[i].view(), positions[i], 64, 0.2f);
      EXPECT_TRUE(bitwise_equal(alone.spec, spec[i])) << "seq " << i;
      EXPECT_TRUE(bitwise_equal(alone.exact, exact[i])) << "seq " << i;
    }
    if (threads == 1) {
      ref_exact = exact;
      ref_spec = spec;
      ref_results = results;
      continue;
    }
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_TRUE(bitwise_equal(exact[i], ref_exact[i])) << "threads " << threads << " seq " << i;
      EXPECT_TRUE(bitwise_equal(spec[i], ref_spec[i])) << "threads " << threads << " seq " << i;
      EXPECT_EQ(std::bit_cast<uint64_t>(results[i].dist2), std::bit_cast<uint64_t>(ref_results[i].dist2));
      EXPECT_EQ(results[i].accept, ref_results[i].accept);
    }
  }
}

TEST(SpecPredictor, QuestNeedsEnoughBudgetAndFallsBackWithoutPageBounds) {
  Device dev({.name = "t", .threads = 1, .cores = {}});
  const AttentionShape shape{4, 2, 32};
  const PagedCache cache(DType::F32, 2, 32, 500, 1, false);
  const std::vector<float> q = random_query(4, 32, 2);
  EXPECT_THROW(run_quest(dev, shape, q.data(), cache.view(), 499, kQuestMinSpecChunk - 1, 0.1f), Error);
  // No bounds (a sliding-window view): the sink-window rows, bit for bit.
  const QuestRun no_bounds = run_quest(dev, shape, q.data(), cache.cache.view(), 499, 64, 0.1f);
  std::vector<float> exact(4 * 32), spec(4 * 32);
  const SpecDecodeQuery sq{{q.data(), cache.cache.view(), 499, exact.data()}, spec.data()};
  SpecResult r{};
  speculative_flash_decode(dev, shape, std::span<const SpecDecodeQuery>(&sq, 1), 64, 0.1f, std::span<SpecResult>(&r, 1),
                           [] {});
  EXPECT_TRUE(bitwise_equal(no_bounds.spec, spec));
  EXPECT_TRUE(bitwise_equal(no_bounds.exact, exact));
  // Bounds that do not cover the sequence are an error, not a silent misread.
  KvCacheView short_bounds = cache.view();
  short_bounds.key_pages_per_head = 3;  // the sequence needs 16
  EXPECT_THROW(run_quest(dev, shape, q.data(), short_bounds, 499, 64, 0.1f), Error);
}

}  // namespace
}  // namespace alspec
