// Tensor-parallel split (Megatron style): Q/K/V and gate/up column-parallel (rows split), o and
// down row-parallel (columns split, partial sums all-reduced), attention heads and KV heads split,
// the LM head split over the vocabulary (logits all-gathered). Each rank's shard is a ModelShape.
#pragma once

#include "alspec/perf/model_shape.h"

namespace alspec::perf {

// Per-rank shapes for tp ranks. Error(kInvalidArgument) naming the model when tp < 1 or tp does
// not divide n_head, n_head_kv or n_ff (KV heads are not replicated in this model).
// `chunks` > 0: the row-parallel products are summed by a chunk all-gather of that many column
// chunks in all (C), so each rank runs C / tp of them (ModelShape::chunks_per_rank).
ModelShape shard(const ModelShape& s, int tp, int chunks = 0);

// One of k equal column chunks of `m` (a rank's o or down product run as k matvecs).
MatrixShape column_chunk(const MatrixShape& m, int k);

}  // namespace alspec::perf
