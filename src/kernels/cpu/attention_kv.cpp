// KV cache rows: validation, sizes, and the scalar conversions every cache row goes through.
#include <string>

#include "alspec/core/error.h"
#include "alspec/kernels/attention.h"
#include "alspec/kernels/quant.h"

namespace alspec {

void check_kv_type(DType type, int head_dim) {
  if (head_dim <= 0) throw_invalid_argument("kv cache: head_dim must be positive, got " + std::to_string(head_dim));
  switch (type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
      return;
    case DType::Q8_0:
      if (head_dim % 32 != 0) {
        throw_invalid_argument("kv cache: Q8_0 needs head_dim % 32 == 0, got head_dim " + std::to_string(head_dim));
      }
      return;
    default:
      throw_invalid_argument("kv cache: unsupported element type " + std::string(dtype_name(type)) +
                             " (F32, F16, BF16 or Q8_0)");
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

}  // namespace alspec
