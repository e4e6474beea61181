// Element-wise ops against float64 re-derivations of their definitions.
#include "alspec/kernels/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace alspec {
namespace {

std::vector<float> random_vector(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// Relative L2 error ||a-b|| / ||b||.
double rel_l2(const std::vector<float>& a, const std::vector<double>& b) {
  double e = 0, r = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    e += (a[i] - b[i]) * (a[i] - b[i]);
    r += b[i] * b[i];
  }
  return std::sqrt(e / r);
}

TEST(Ops, RmsnormMatchesDouble) {
  const int64_t n = 2053;
  auto x = random_vector(n, 1, 3.0f), w = random_vector(n, 2);
  std::vector<float> y(n);
  rmsnorm(x.data(), w.data(), y.data(), n, 1e-5f);
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  const double r = 1.0 / std::sqrt(ss / n + 1e-5);
  std::vector<double> ref(n);
  for (int64_t i = 0; i < n; ++i) ref[i] = x[i] * r * w[i];
  EXPECT_LT(rel_l2(y, ref), 1e-6);
  // In place gives the same bits.
  rmsnorm(x.data(), w.data(), x.data(), n, 1e-5f);
  EXPECT_EQ(x, y);
}

TEST(Ops, RopeInterleavedAndNeoxPairs) {
  const int heads = 3, dim = 8;
  std::vector<float> inv_freq(dim / 2);
  for (int i = 0; i < dim / 2; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / dim);
  const auto v = random_vector(heads * dim, 3);
  for (int pos : {0, 1, 17, 4095}) {
    auto a = v, b = v;
    rope_interleaved(a.data(), heads, dim, pos, inv_freq.data());
    rope_neox(b.data(), heads, dim, pos, inv_freq.data());
    std::vector<double> ra(v.begin(), v.end()), rb(v.begin(), v.end());
    for (int h = 0; h < heads; ++h) {
      for (int i = 0; i < dim / 2; ++i) {
        const double t = double(pos) * inv_freq[i], c = std::cos(t), s = std::sin(t);
        const int ia = h * dim + 2 * i, ja = ia + 1, ib = h * dim + i, jb = ib + dim / 2;
        ra[ia] = v[ia] * c - v[ja] * s;
        ra[ja] = v[ia] * s + v[ja] * c;
        rb[ib] = v[ib] * c - v[jb] * s;
        rb[jb] = v[ib] * s + v[jb] * c;
      }
    }
    EXPECT_LT(rel_l2(a, ra), 1e-6) << pos;
    EXPECT_LT(rel_l2(b, rb), 1e-6) << pos;
    if (pos == 0) {
      EXPECT_EQ(a, v);
    }
  }
}

TEST(Ops, GatedActivations) {
  const int64_t n = 1001;
  const auto g = random_vector(n, 4, 4.0f), u = random_vector(n, 5);
  std::vector<float> s(n), t(n);
  swiglu(g.data(), u.data(), s.data(), n);
  geglu_tanh(g.data(), u.data(), t.data(), n);
  std::vector<double> rs(n), rt(n);
  for (int64_t i = 0; i < n; ++i) {
    const double x = g[i];
    rs[i] = x / (1 + std::exp(-x)) * u[i];
    rt[i] = 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) * u[i];
  }
  EXPECT_LT(rel_l2(s, rs), 1e-6);
  EXPECT_LT(rel_l2(t, rt), 1e-6);
}

TEST(Ops, AddScale) {
  std::vector<float> y = {1, 2, 3}, x = {0.5f, -2, 4};
  add_inplace(y.data(), x.data(), 3);
  EXPECT_EQ(y, (std::vector<float>{1.5f, 0, 7}));
  scale_inplace(y.data(), 2.0f, 3);
  EXPECT_EQ(y, (std::vector<float>{3, 0, 14}));
}

TEST(Ops, SoftmaxAndArgmax) {
  auto x = random_vector(777, 6, 5.0f);
  x[10] = -INFINITY;
  const auto orig = x;
  softmax_inplace(x.data(), 777);
  double mx = -INFINITY, sum = 0;
  for (float v : orig) mx = std::max(mx, double(v));
  for (float v : orig) sum += std::exp(v - mx);
  std::vector<double> ref(777);
  for (size_t i = 0; i < 777; ++i) ref[i] = std::exp(orig[i] - mx) / sum;
  EXPECT_LT(rel_l2(x, ref), 1e-6);
  EXPECT_EQ(x[10], 0.0f);
  std::vector<float> a = {1, 5, NAN, 5, -2};
  EXPECT_EQ(argmax(a.data(), 5), 1);
  EXPECT_EQ(argmax(a.data(), 0), -1);
  std::vector<float> inf(4, -INFINITY);
  softmax_inplace(inf.data(), 4);
  EXPECT_EQ(inf[0], 0.25f);
}

}  // namespace
}  // namespace alspec
