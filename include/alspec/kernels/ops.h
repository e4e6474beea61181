// Element-wise and row operations on float32 (reference semantics; single-threaded, so results
// never depend on the thread count).
#pragma once

#include <cstdint>

namespace alspec {

// y[i] = (x[i] * r) * w[i], r = 1/sqrt(mean(x^2) + eps); the sum of squares is accumulated in
// double in index order. y may alias x.
void rmsnorm(const float* x, const float* weight, float* y, int64_t n, float eps);

// Rotary position embedding in place on v[n_heads][head_dim] (head_dim even). Pair i
// (0 <= i < head_dim/2) rotates by angle pos*inv_freq[i] (computed in double, then cos/sin
// rounded to float): (a, b) -> (a*cos - b*sin, a*sin + b*cos).
// Interleaved (GGML mode 0, llama): pair i is elements (2i, 2i+1).
void rope_interleaved(float* v, int n_heads, int head_dim, int pos, const float* inv_freq);
// NEOX (GGML mode 2, qwen2/gemma): pair i is elements (i, i + head_dim/2).
void rope_neox(float* v, int n_heads, int head_dim, int pos, const float* inv_freq);

// out = silu(gate) * up, silu(g) = g / (1 + exp(-g)). out may alias gate or up.
void swiglu(const float* gate, const float* up, float* out, int64_t n);
// out = gelu_tanh(gate) * up, gelu_tanh(g) = 0.5*g*(1 + tanh(sqrt(2/pi)*(g + 0.044715*g^3))).
void geglu_tanh(const float* gate, const float* up, float* out, int64_t n);

void add_inplace(float* y, const float* x, int64_t n);   // y += x
void scale_inplace(float* y, float s, int64_t n);        // y *= s
// x = exp(x - max) / sum; the sum is accumulated in double in index order. -inf entries give 0.
void softmax_inplace(float* x, int64_t n);
// Index of the largest element (the first on ties; NaN never wins); -1 when n == 0.
int64_t argmax(const float* x, int64_t n);

}  // namespace alspec
