// attention_kernel_variant: which row kernel (attention_rows_*.cpp) runs for a cache, for reports.
#include <string>

#include "alspec/kernels/attention.h"

namespace alspec {

std::string attention_kernel_variant(DType type, int head_dim, bool k_blocks) {
  const SimdLevel level = attention_simd_level(head_dim);
  std::string out(simd_level_name(level));
  if (level == SimdLevel::kScalar) return out + " twin (rows decoded with load_kv_row/load_key_row)";
  if (head_dim == 64 || head_dim == 128) {
    out += " fused, pipelined, ";
    out += k_blocks ? "K in key blocks" : "K in rows";
    out += type == DType::Q8_0 ? " (Q8_0 decoded in registers)" : "";
    return out;
  }
  return out + " tiles decoded to float" + (k_blocks ? ", K in key blocks read row by row" : "");
}

}  // namespace alspec
