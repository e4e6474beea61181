// Tensor-parallel split (Megatron style): Q/K/V and gate/up column-parallel (rows split), o and
// down row-parallel (columns split, partial sums all-reduced), attention heads and KV heads split,
// the LM head split over the vocabulary (logits all-gathered). Each rank's shard is a ModelShape.
#pragma once

#include "alspec/perf/model_shape.h"

namespace alspec::perf {

// Per-rank shapes for tp ranks. Error(kInvalidArgument) naming the model when tp < 1 or tp does
// not divide n_head, n_head_kv or n_ff (KV heads are not replicated in this model).
ModelShape shard(const ModelShape& s, int tp);

}  // namespace alspec::perf
