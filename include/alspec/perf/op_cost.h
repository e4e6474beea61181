// Per-op cost of one decode token on one device (one tensor-parallel rank), the roofline with a
// fixed per-op cost:
//   matvec:       overhead + max(weight bytes / matvec rate(type), 2 rows cols / peak); a type with a
//                 measured rate (calibrated CPUs) has no FLOP term: the measurement includes it
//   attention:    attention overhead + max(L (K+V bytes per token) / attention rate,
//                                          4 n_head head_dim L / attention FLOP rate)
//   element-wise: element-wise overhead + elements x ns per element
//   collectives:  see collectives.h (tp all-reduce after o and down, logits all-gather)
// The op sequence is the Session's (docs/architecture.md): per layer pre = RMSNorm, fused QKV,
// bias/RoPE/KV write; attention; post = o, all-reduce, residual + RMSNorm, fused gate/up, SwiGLU,
// down, all-reduce, residual; after the last layer RMSNorm, LM head, logits all-gather.
#pragma once

#include <string>
#include <vector>

#include "alspec/perf/hardware_profile.h"
#include "alspec/perf/model_shape.h"

namespace alspec::perf {

enum class OpKind { kMatvec, kAttention, kElementwise, kCollective, kMessage };
const char* op_kind_name(OpKind k);

struct OpCost {
  std::string name;
  OpKind kind = OpKind::kElementwise;
  double bytes = 0;  // memory bytes read (link bytes for collectives)
  double flops = 0;
  double us = 0;
  std::string bound;  // "memory" | "compute" | "overhead" | "link"
};

double sum_us(const std::vector<OpCost>& ops);

OpCost matvec_cost(const DeviceRates& r, const std::string& name, const std::vector<const MatrixShape*>& fused,
                   bool cached = false);
// Attention of one query over `rows` cache rows of a rank with `s.n_head`/`s.n_head_kv` heads: the
// profile's measured time for this head geometry where it has one (not when `cached`: that table
// is of cold caches), else the roofline.
OpCost attention_cost(const DeviceRates& r, const ModelShape& s, double rows, const std::string& name = "attention",
                      bool cached = false);
OpCost elementwise_cost(const DeviceRates& r, const std::string& name, double elements, double ns_per_element);

// One rank's ops of one layer and of the token's ends. `rank` is the shard (tp_split.h); `tp`
// the group size (collectives need profile.collectives.tp_link when tp > 1).
struct LayerOps {
  std::vector<OpCost> pre;   // norm, QKV, RoPE + KV write
  OpCost attention;          // exact attention over L rows
  OpCost spec_ready;         // speculative kernel until O_spec is published: the 2S sink+window rows
  std::vector<OpCost> post;  // o ... residual, all-reduces included
};
struct TokenOps {
  std::vector<OpCost> begin;  // embedding row
  std::vector<LayerOps> layers;
  std::vector<OpCost> end;    // final norm, LM head, logits all-gather
};

// ctx_rows = L (rows attended, newest token included); spec_chunk = S. When the rank's weights and
// KV bytes of the token fit in r.cache_bytes, matvecs use the cache-resident rates.
TokenOps token_ops(const ModelShape& rank, const DeviceRates& r, const CollectiveSpec& coll, int tp, double ctx_rows,
                   int spec_chunk);

}  // namespace alspec::perf
