#include "alspec/kernels/attention_state.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

namespace alspec {
namespace {

// A state built directly from scores and value rows (what the kernels compute over some rows).
struct State {
  std::vector<float> acc;
  float m = kEmptyStateMax;
  float l = 0.0f;
  explicit State(int d) : acc(static_cast<size_t>(d), 0.0f) {}
  AttentionStateRef ref() { return {acc.data(), &m, &l}; }
  ConstAttentionStateRef cref() const { return {acc.data(), &m, &l}; }
};

State make_state(const std::vector<float>& scores, const std::vector<std::vector<float>>& v, int d) {
  State s(d);
  if (scores.empty()) return s;
  s.m = *std::max_element(scores.begin(), scores.end());
  for (size_t r = 0; r < scores.size(); ++r) {
    const float p = std::exp(scores[r] - s.m);
    s.l += p;
    for (int i = 0; i < d; ++i) s.acc[static_cast<size_t>(i)] += p * v[r][static_cast<size_t>(i)];
  }
  return s;
}

struct Rows {
  std::vector<float> scores;
  std::vector<std::vector<float>> v;
};

Rows random_rows(int n, int d, float score_scale, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Rows r;
  for (int i = 0; i < n; ++i) {
    r.scores.push_back(score_scale * nd(rng));
    std::vector<float> row(static_cast<size_t>(d));
    for (auto& x : row) x = nd(rng);
    r.v.push_back(row);
  }
  return r;
}

bool bitwise_equal(const State& a, const State& b) {
  if (std::bit_cast<uint32_t>(a.m) != std::bit_cast<uint32_t>(b.m)) return false;
  if (std::bit_cast<uint32_t>(a.l) != std::bit_cast<uint32_t>(b.l)) return false;
  for (size_t i = 0; i < a.acc.size(); ++i) {
    if (std::bit_cast<uint32_t>(a.acc[i]) != std::bit_cast<uint32_t>(b.acc[i])) return false;
  }
  return true;
}

// A fully masked row set has m = -inf and l = 0, i.e. it is the empty state tested here.
TEST(AttentionState, EmptyStateIsIdentity) {
  constexpr int d = 16;
  std::mt19937 rng(1);
  const Rows rows = random_rows(5, d, 2.0f, rng);
  const State x = make_state(rows.scores, rows.v, d);

  State into_empty(d);
  reset_attention_state(into_empty.ref(), d);
  merge_attention_state(into_empty.ref(), x.cref(), d);
  EXPECT_TRUE(bitwise_equal(into_empty, x));

  State x2 = x;
  State empty(d);
  reset_attention_state(empty.ref(), d);
  merge_attention_state(x2.ref(), empty.cref(), d);
  EXPECT_TRUE(bitwise_equal(x2, x));

  // Empty with empty stays empty; normalising it gives zeros, not NaN.
  State e2(d);
  reset_attention_state(e2.ref(), d);
  merge_attention_state(e2.ref(), empty.cref(), d);
  EXPECT_EQ(e2.m, kEmptyStateMax);
  EXPECT_EQ(e2.l, 0.0f);
  std::vector<float> out(d, 1.0f);
  normalize_attention_state(e2.cref(), out.data(), d);
  for (float o : out) EXPECT_EQ(o, 0.0f);
}

TEST(AttentionState, MergeMatchesStateOverUnionAndIsAssociative) {
  constexpr int d = 64;
  std::mt19937 rng(3);
  for (float score_scale : {0.5f, 4.0f, 40.0f}) {  // 40: one part dominates, exp underflows for others
    const Rows a = random_rows(7, d, score_scale, rng);
    const Rows b = random_rows(11, d, score_scale, rng);
    const Rows c = random_rows(5, d, score_scale, rng);
    const State sa = make_state(a.scores, a.v, d);
    const State sb = make_state(b.scores, b.v, d);
    const State sc = make_state(c.scores, c.v, d);

    State left = sa;  // (a + b) + c
    merge_attention_state(left.ref(), sb.cref(), d);
    merge_attention_state(left.ref(), sc.cref(), d);
    State bc = sb;  // a + (b + c)
    merge_attention_state(bc.ref(), sc.cref(), d);
    State right = sa;
    merge_attention_state(right.ref(), bc.cref(), d);

    // Softmax over the union in double.
    Rows all = a;
    all.scores.insert(all.scores.end(), b.scores.begin(), b.scores.end());
    all.scores.insert(all.scores.end(), c.scores.begin(), c.scores.end());
    all.v.insert(all.v.end(), b.v.begin(), b.v.end());
    all.v.insert(all.v.end(), c.v.begin(), c.v.end());
    double m = all.scores[0];
    for (float s : all.scores) m = std::max<double>(m, s);
    std::vector<double> ref(d, 0.0);
    double l = 0.0;
    for (size_t r = 0; r < all.scores.size(); ++r) {
      const double p = std::exp(all.scores[r] - m);
      l += p;
      for (int i = 0; i < d; ++i) ref[static_cast<size_t>(i)] += p * all.v[r][static_cast<size_t>(i)];
    }
    std::vector<float> ol(d), orr(d);
    normalize_attention_state(left.cref(), ol.data(), d);
    normalize_attention_state(right.cref(), orr.data(), d);
    EXPECT_EQ(left.m, right.m);
    double max_ref = 0.0;
    for (int i = 0; i < d; ++i) max_ref = std::max(max_ref, std::fabs(ref[static_cast<size_t>(i)] / l));
    for (int i = 0; i < d; ++i) {
      const double r = ref[static_cast<size_t>(i)] / l;
      // Stated rounding: a few float ulp of the largest output per merge.
      EXPECT_NEAR(ol[static_cast<size_t>(i)], r, 1e-5 * max_ref) << "scale " << score_scale << " i " << i;
      EXPECT_NEAR(orr[static_cast<size_t>(i)], ol[static_cast<size_t>(i)], 1e-5 * max_ref);
    }
    EXPECT_NEAR(left.l, right.l, 1e-6 * left.l);
  }
}

}  // namespace
}  // namespace alspec
