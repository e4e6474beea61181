// Per-sequence key/value cache: for each layer, K and V laid out head-major
// ([n_kv_heads][capacity][head_dim] in the cache element type), as the attention kernels read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "alspec/core/dtype.h"
#include "alspec/core/page_buffer.h"
#include "alspec/kernels/attention.h"
#include "alspec/model/model_config.h"

namespace alspec {

class KvCache {
 public:
  // Reserves address space lazily (anonymous mapping, huge pages requested): untouched parts cost
  // no memory.
  // key_page_bounds: keep the quest predictor's per-page key bounds (spec_predictor.h); without
  // them view() has none and store() does no extra work.
  KvCache(const ModelConfig& config, int64_t capacity, DType type, bool key_page_bounds = true);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  DType type() const { return type_; }
  int64_t capacity() const { return capacity_; }
  size_t bytes() const { return bytes_; }
  KvCacheView view(int layer) const;
  // Stores the K and V rows ([n_kv_heads][head_dim] floats each) of position `pos`, and folds
  // the stored (rounded) keys into their page bounds (the quest predictor's metadata).
  void store(int layer, int64_t pos, const float* k, const float* v);
  // The sequence now ends at `rows` (a truncation): recomputes the bounds of the partial last
  // page from its remaining rows, so that they match those of a cache filled afresh.
  void forget_rows_from(int64_t rows);
  size_t key_page_bytes() const { return key_pages_.size(); }

 private:
  uint8_t* k_base(int layer) const;
  uint8_t* v_base(int layer) const;

  DType type_;
  int64_t capacity_;       // positions (the context size asked for)
  int64_t rows_per_head_;  // rows of each head's plane: capacity_, rounded up to key blocks
  bool k_blocks_ = false;  // K in key blocks (prefer_key_blocks)
  int n_layers_, n_kv_heads_, head_dim_;
  size_t row_bytes_;
  size_t plane_bytes_;  // one layer's K (or V)
  size_t bytes_;
  PageBuffer memory_;
  uint8_t* data_ = nullptr;
  int64_t key_pages_per_head_ = 0;
  PageBuffer key_pages_;  // [layer][n_kv_heads][pages] records of key_page_record_bytes(head_dim)
  // [layer][n_kv_heads][2][head_dim]: exact min and max of each head's page being filled
  std::vector<float> key_page_staging_;
  KeyBound* head_key_pages(int layer, int head) const;
  float* key_page_staging(int layer, int head);
};

}  // namespace alspec
