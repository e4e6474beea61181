// Test helpers for the attention kernels: random KV caches, reference outputs, error measures.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "alspec/kernels/attention.h"
#include "alspec/kernels/attention_reference.h"

namespace alspec::attention_test {

// One layer's cache filled with N(0, 1) rows, plus the float values before storing.
struct TestCache {
  DType type;
  int n_kv_heads;
  int head_dim;
  int64_t capacity;
  bool k_blocks;  // K in key blocks (capacity rounded up to whole blocks)
  std::vector<uint8_t> k, v;
  std::vector<float> k_src, v_src;  // [n_kv_heads][capacity][head_dim]

  TestCache(DType t, int kv_heads, int dim, int64_t cap, uint32_t seed, bool blocks = false)
      : type(t), n_kv_heads(kv_heads), head_dim(dim),
        capacity(blocks ? (cap + kKeyBlockRows - 1) / kKeyBlockRows * kKeyBlockRows : cap), k_blocks(blocks) {
    cap = capacity;
    const size_t bytes = kv_cache_bytes(t, kv_heads, dim, cap);
    k.resize(bytes);
    v.resize(bytes);
    const size_t n = static_cast<size_t>(kv_heads) * static_cast<size_t>(cap) * static_cast<size_t>(dim);
    k_src.resize(n);
    v_src.resize(n);
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (auto& x : k_src) x = nd(rng);
    for (auto& x : v_src) x = nd(rng);
    for (int h = 0; h < kv_heads; ++h) {
      for (int64_t r = 0; r < cap; ++r) store(h, r);
    }
  }

  // Re-encodes row r of head h from k_src/v_src.
  void store(int h, int64_t r) {
    const KvCacheView kv = view();
    const size_t src = (static_cast<size_t>(h) * static_cast<size_t>(capacity) + static_cast<size_t>(r)) * head_dim;
    store_key_row(type, k_blocks, &k_src[src], k.data() + kv.row_offset(h, 0), r, head_dim);
    store_kv_row(type, &v_src[src], v.data() + kv.row_offset(h, r), head_dim);
  }

  KvCacheView view() const { return {type, k.data(), v.data(), n_kv_heads, head_dim, capacity, k_blocks, 0}; }

  // The same rows kept in F32 (the values before the cache type rounded them).
  KvCacheView source_view() const { return {DType::F32, k_src.data(), v_src.data(), n_kv_heads, head_dim, capacity}; }
};

inline std::vector<float> random_query(int n_heads, int head_dim, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> q(static_cast<size_t>(n_heads) * static_cast<size_t>(head_dim));
  for (auto& x : q) x = nd(rng);
  return q;
}

inline std::vector<double> reference(const AttentionShape& shape, const float* q, const KvCacheView& kv,
                                     std::span<const RowRange> rows) {
  std::vector<double> out(static_cast<size_t>(shape.n_heads) * static_cast<size_t>(shape.head_dim));
  attention_reference(shape, q, kv, rows, out.data());
  return out;
}

inline std::vector<double> reference_full(const AttentionShape& shape, const float* q, const KvCacheView& kv,
                                          int64_t L) {
  const RowRange all{0, L};
  return reference(shape, q, kv, {&all, 1});
}

// Normalised mean squared error sum (x - ref)^2 / sum ref^2.
inline double nmse(std::span<const float> x, std::span<const double> ref) {
  double num = 0.0;
  double den = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = x[i] - ref[i];
    num += e * e;
    den += ref[i] * ref[i];
  }
  return den == 0.0 ? num : num / den;
}

}  // namespace alspec::attention_test
