#include "alspec/model/kv_cache.h"

#include <string>
#include <vector>

#include "alspec/core/error.h"

namespace alspec {

KvCache::KvCache(const ModelConfig& c, int64_t capacity, DType type, bool key_page_bounds)
    : type_(type), capacity_(capacity), n_layers_(c.n_layers), n_kv_heads_(c.n_head_kv), head_dim_(c.head_dim) {
  check_kv_type(type, head_dim_);
  if (capacity <= 0) throw_invalid_argument("context size must be positive");
  row_bytes_ = row_bytes(type, head_dim_);
  // K in key blocks where the decode kernel reads them (prefer_key_blocks); each head's plane is
  // then a whole number of blocks.
  k_blocks_ = prefer_key_blocks(type, head_dim_);
  rows_per_head_ = k_blocks_ ? (capacity + kKeyBlockRows - 1) / kKeyBlockRows * kKeyBlockRows : capacity;
  plane_bytes_ = row_bytes_ * static_cast<size_t>(rows_per_head_) * static_cast<size_t>(n_kv_heads_);
  bytes_ = plane_bytes_ * 2 * static_cast<size_t>(n_layers_);
  // Sized to the capacity, touched only as far as used: not reserved in swap. Huge pages: decode
  // streams whole planes, and 4 KiB pages cost a TLB miss every 4 KiB.
  try {
    memory_ = PageBuffer(bytes_, /*reserve=*/false);
  } catch (const Error&) {
    throw Error(ErrorKind::kRuntime, "cannot reserve " + std::to_string(bytes_ >> 20) + " MiB for the KV cache");
  }
  data_ = memory_.data();
  if (!key_page_bounds) return;
  key_pages_per_head_ = key_pages_for_rows(capacity);
  const size_t page_bytes = static_cast<size_t>(key_pages_per_head_) * key_page_record_bytes(head_dim_) *
                            static_cast<size_t>(n_kv_heads_) * static_cast<size_t>(n_layers_);
  key_pages_ = PageBuffer(page_bytes, /*reserve=*/false);
  key_page_staging_.assign(static_cast<size_t>(n_layers_) * static_cast<size_t>(n_kv_heads_) * 2 *
                               static_cast<size_t>(head_dim_),
                           0.0f);
}

KvCache::~KvCache() = default;

uint8_t* KvCache::k_base(int layer) const { return data_ + plane_bytes_ * 2 * static_cast<size_t>(layer); }
uint8_t* KvCache::v_base(int layer) const { return k_base(layer) + plane_bytes_; }

KeyBound* KvCache::head_key_pages(int layer, int head) const {
  const size_t per_head = static_cast<size_t>(key_pages_per_head_) * key_page_record_bytes(head_dim_);
  return reinterpret_cast<KeyBound*>(key_pages_.data()) +
         (static_cast<size_t>(layer) * static_cast<size_t>(n_kv_heads_) + static_cast<size_t>(head)) * per_head;
}

float* KvCache::key_page_staging(int layer, int head) {
  return key_page_staging_.data() +
         (static_cast<size_t>(layer) * static_cast<size_t>(n_kv_heads_) + static_cast<size_t>(head)) * 2 *
             static_cast<size_t>(head_dim_);
}

KvCacheView KvCache::view(int layer) const {
  KvCacheView v;
  v.type = type_;
  v.k = k_base(layer);
  v.v = v_base(layer);
  v.n_kv_heads = n_kv_heads_;
  v.head_dim = head_dim_;
  v.capacity = rows_per_head_;
  v.k_blocks = k_blocks_;
  v.key_pages = key_pages_per_head_ > 0 ? head_key_pages(layer, 0) : nullptr;
  v.key_pages_per_head = key_pages_per_head_;
  return v;
}

void KvCache::store(int layer, int64_t pos, const float* k, const float* v) {
  thread_local std::vector<float> stored;
  stored.resize(static_cast<size_t>(head_dim_));
  for (int h = 0; h < n_kv_heads_; ++h) {
    const size_t head_off = static_cast<size_t>(h) * static_cast<size_t>(rows_per_head_) * row_bytes_;
    store_key_row(type_, k_blocks_, k + static_cast<size_t>(h) * head_dim_, k_base(layer) + head_off, pos, head_dim_);
    store_kv_row(type_, v + static_cast<size_t>(h) * head_dim_,
                 v_base(layer) + head_off + static_cast<size_t>(pos) * row_bytes_, head_dim_);
    if (key_pages_per_head_ == 0) continue;
    // Bounds of the key as stored (after rounding), so they bound what attention reads.
    load_key_row(type_, k_blocks_, k_base(layer) + head_off, pos, stored.data(), head_dim_);
    update_key_page_bounds(head_key_pages(layer, h), key_page_staging(layer, h), pos, stored.data(), head_dim_);
  }
}

void KvCache::forget_rows_from(int64_t rows) {
  // The rows of the partial last page go back into its staging bounds; its record (if the page
  // was complete before) is rewritten when the page completes again.
  if (key_pages_per_head_ == 0) return;
  const int64_t page_begin = rows / kKeyPageRows * kKeyPageRows;
  std::vector<float> key(static_cast<size_t>(head_dim_));
  for (int l = 0; l < n_layers_; ++l) {
    for (int h = 0; h < n_kv_heads_; ++h) {
      const uint8_t* plane = k_base(l) + static_cast<size_t>(h) * static_cast<size_t>(rows_per_head_) * row_bytes_;
      for (int64_t r = page_begin; r < rows; ++r) {
        load_key_row(type_, k_blocks_, plane, r, key.data(), head_dim_);
        update_key_page_bounds(head_key_pages(l, h), key_page_staging(l, h), r, key.data(), head_dim_);
      }
    }
  }
}

}  // namespace alspec
