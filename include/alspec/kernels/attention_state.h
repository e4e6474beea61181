// Partial attention state (FlashInfer style): for one query head, the unnormalised accumulator
// acc[head_dim] = sum_r e^(s_r - m) v_r, the running max m of the scores and the sum of
// exponentials l = sum_r e^(s_r - m), over some set of KV rows. Two states over disjoint row sets
// combine with the log-sum-exp rule; `merge_attention_state` is the only place that does it, so the
// speculative kernel, plain flash decode and the split-K reduction all round the same way.
#pragma once

#include <limits>

namespace alspec {

struct AttentionStateRef {
  float* acc;  // [head_dim], unnormalised
  float* m;    // running max; -inf for the empty state
  float* l;    // sum of exponentials; 0 for the empty state
};

struct ConstAttentionStateRef {
  const float* acc;
  const float* m;
  const float* l;
};

constexpr float kEmptyStateMax = -std::numeric_limits<float>::infinity();

// The empty state (no rows, or all rows masked): acc = 0, m = -inf, l = 0. It is the identity of
// merge: merging it changes nothing, merging into it copies the other state bit for bit.
void reset_attention_state(AttentionStateRef s, int head_dim);

// dst <- dst (+) src: m = max(m1, m2); l = e^(m1-m) l1 + e^(m2-m) l2; acc = e^(m1-m) acc1 + e^(m2-m) acc2.
// Commutative and associative up to float rounding (a few ulp per merge, see the tests).
void merge_attention_state(AttentionStateRef dst, ConstAttentionStateRef src, int head_dim);

// out = acc / l; writes zeros for the empty state (no rows: nothing to attend to).
void normalize_attention_state(ConstAttentionStateRef s, float* out, int head_dim);

}  // namespace alspec
