// KV cache rows: validation, sizes, and the scalar conversions every cache row goes through.
#include <cstring>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/kernels/attention.h"
#include "alspec/kernels/cpu_features.h"
#include "alspec/kernels/quant.h"

namespace alspec {

bool is_kv_cache_type(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::Q8_0;
}

// The messages reach the CLI user (--kv-type), so they name the option values.
void check_kv_type(DType type, int head_dim) {
  if (!is_kv_cache_type(type)) {
    throw_invalid_argument("KV cache type " + std::string(dtype_name(type)) + " is not supported (f32, f16, bf16, q8_0)");
  }
  if (head_dim <= 0) throw_invalid_argument("KV cache: head dimension must be positive, got " + std::to_string(head_dim));
  if (type == DType::Q8_0 && head_dim % 32 != 0) {
    throw_invalid_argument("KV cache type q8_0 needs a head dimension that is a multiple of 32, got " +
                           std::to_string(head_dim));
  }
}

size_t kv_cache_bytes(DType type, int n_kv_heads, int head_dim, int64_t capacity) {
  check_kv_type(type, head_dim);
  return static_cast<size_t>(n_kv_heads) * static_cast<size_t>(capacity) * row_bytes(type, head_dim);
}

// Cache rows use the block formats of quant.h (Q8_0: d = fp16(amax/127), q = round(x/d)); the
// vectorised row kernels (attention_rows_*.cpp) decode the same bytes.
void store_kv_row(DType type, const float* src, void* dst, int head_dim) {
  check_kv_type(type, head_dim);
  quantize_row(type, src, dst, head_dim);
}

void load_kv_row(DType type, const void* src, float* dst, int head_dim) {
  check_kv_type(type, head_dim);
  dequantize_row(type, src, dst, head_dim);
}

bool key_blocks_supported(DType type) { return type == DType::F32 || type == DType::F16 || type == DType::BF16; }

bool prefer_key_blocks(DType type, int head_dim) {
  return key_blocks_supported(type) && (head_dim == 64 || head_dim == 128) &&
         attention_simd_level(head_dim) >= SimdLevel::kAvx2;
}

namespace {

void check_blocks(DType type, bool blocks) {
  if (blocks && !key_blocks_supported(type)) {
    throw_invalid_argument("kv cache: key blocks need F32, F16 or BF16, not " + std::string(dtype_name(type)));
  }
}

// Byte offset of element j of K row `row` inside a head's plane in key blocks.
size_t block_element_offset(int64_t row, int j, int head_dim, size_t elem) {
  const auto block = static_cast<size_t>(row / kKeyBlockRows);
  const auto lane = static_cast<size_t>(row % kKeyBlockRows);
  return ((block * static_cast<size_t>(head_dim) + static_cast<size_t>(j)) * kKeyBlockRows + lane) * elem;
}

}  // namespace

// Key blocks go through the row format: encode/decode one row, then scatter/gather its elements.
void store_key_row(DType type, bool blocks, const float* src, void* head_base, int64_t row, int head_dim) {
  check_kv_type(type, head_dim);
  check_blocks(type, blocks);
  const size_t rb = row_bytes(type, head_dim);
  auto* base = static_cast<uint8_t*>(head_base);
  if (!blocks) return quantize_row(type, src, base + static_cast<size_t>(row) * rb, head_dim);
  thread_local std::vector<uint8_t> tmp;
  tmp.resize(rb);
  quantize_row(type, src, tmp.data(), head_dim);
  const size_t elem = rb / static_cast<size_t>(head_dim);
  for (int j = 0; j < head_dim; ++j) {
    std::memcpy(base + block_element_offset(row, j, head_dim, elem), tmp.data() + static_cast<size_t>(j) * elem, elem);
  }
}

void load_key_row(DType type, bool blocks, const void* head_base, int64_t row, float* dst, int head_dim) {
  check_kv_type(type, head_dim);
  check_blocks(type, blocks);
  const size_t rb = row_bytes(type, head_dim);
  const auto* base = static_cast<const uint8_t*>(head_base);
  if (!blocks) return dequantize_row(type, base + static_cast<size_t>(row) * rb, dst, head_dim);
  thread_local std::vector<uint8_t> tmp;
  tmp.resize(rb);
  const size_t elem = rb / static_cast<size_t>(head_dim);
  for (int j = 0; j < head_dim; ++j) {
    std::memcpy(tmp.data() + static_cast<size_t>(j) * elem, base + block_element_offset(row, j, head_dim, elem), elem);
  }
  dequantize_row(type, tmp.data(), dst, head_dim);
}

}  // namespace alspec
