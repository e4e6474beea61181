// AVX-512 GEMM kernels (gemm_microkernel.inc) in 256-bit vectors with the 32 registers of
// AVX-512VL: 4 rows x 4 tokens per tile, integer lane sums with one vpdpbusd each (unsigned
// offset weights times signed activations, started from -offset * the lane's activation sum;
// exact, no saturation).
// GCC 12 reports bogus (maybe-)uninitialized warnings inside its own AVX-512 intrinsic headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/block_layout.h"
#include "kernels/cpu/gemm_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512dq")

namespace alspec::kernels {
namespace {

struct Isa {
  template <int kOffset>
  static __m256i weights(__m256i u) {
    return u;
  }
  template <int kOffset>
  static __m256i init(const int32_t* neg_sum4) {
    if constexpr (kOffset == 0) {
      return _mm256_setzero_si256();
    } else {
      return _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(neg_sum4)), __builtin_ctz(kOffset));
    }
  }
  template <int kOffset>
  static __m256i lane_dot(__m256i w, __m256i a, __m256i init) {
    return _mm256_dpbusd_epi32(init, w, a);
  }
};

#include "kernels/cpu/gemm_microkernel.inc"

constexpr int kRows = 4, kTokens = 4;

}  // namespace

const GemmKernels& gemm_kernels_avx512() {
  static const GemmKernels k{gemm<Q8_0Type, kRows, kTokens>, gemm<Q4_0Type, kRows, kTokens>,
                             gemm<Q5_0Type, kRows, kTokens>, gemm<Q4_KType, kRows, kTokens>,
                             gemm<Q6_KType, kRows, kTokens>, "4x4 rows x tokens, vpdpbusd"};
  return k;
}

}  // namespace alspec::kernels

#pragma GCC pop_options
