// Byte layouts of the GGML block formats used by the kernels. Blocks are read through byte
// offsets (memcpy) because rows inside a file carry only 1- or 2-byte alignment.
#pragma once

#include <cstdint>
#include <cstring>

#include "alspec/core/half.h"

namespace alspec::kernels {

// Q8_0: fp16 d, int8 q[32]; x = d*q.
inline constexpr int kQ8_0Block = 32, kQ8_0Bytes = 34;
// Q4_0: fp16 d, uint8 qs[16]; x[j] = d*((qs[j]&15)-8), x[j+16] = d*((qs[j]>>4)-8).
inline constexpr int kQ4_0Block = 32, kQ4_0Bytes = 18;
// Q4_1: fp16 d, fp16 m, uint8 qs[16]; x[j] = d*(qs[j]&15) + m, x[j+16] = d*(qs[j]>>4) + m.
inline constexpr int kQ4_1Block = 32, kQ4_1Bytes = 20;
// Q5_0: fp16 d, uint8 qh[4] (32 bits, little-endian), uint8 qs[16]; element j (0..31) is
// q = (nibble j as in Q4_0) | (bit j of qh) << 4 and x = d*(q-16).
inline constexpr int kQ5_0Block = 32, kQ5_0Bytes = 22;
// Q4_K: fp16 d, fp16 dmin, uint8 scales[12] (8 packed 6-bit sc/m pairs), uint8 qs[128].
// Chunk c (64 elements) uses qs[32c..32c+31]: low nibbles are sub-block 2c, high 2c+1.
inline constexpr int kQK = 256, kQ4_KBytes = 144;
inline constexpr int kQ4_KScales = 4, kQ4_KQs = 16;
// Q6_K: uint8 ql[128], uint8 qh[64], int8 scales[16], fp16 d. Sub-blocks of 16 elements.
inline constexpr int kQ6_KBytes = 210;
inline constexpr int kQ6_KQh = 128, kQ6_KScales = 192, kQ6_KD = 208;

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, sizeof v); }
inline float load_fp16(const uint8_t* p) { return fp16_to_fp32(load_u16(p)); }
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Q4_K 6-bit scale and min of sub-block j (0..7), as GGML's get_scale_min_k4.
inline void q4_k_scale_min(const uint8_t* scales, int j, int& sc, int& m) {
  if (j < 4) {
    sc = scales[j] & 63;
    m = scales[j + 4] & 63;
  } else {
    sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
    m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

// Q6_K 6-bit value (0..63) of element e (0..255) of a block. Quarter k of each 128-element
// half: low (k<2) or high nibble of ql[l + 32*(k&1)], high bits (qh[l] >> 2k) & 3.
inline int q6_k_value(const uint8_t* block, int e) {
  const int half = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
  const uint8_t* ql = block + 64 * half;
  const uint8_t* qh = block + kQ6_KQh + 32 * half;
  const uint8_t lbyte = ql[l + ((quarter & 1) ? 32 : 0)];
  const int lo = (quarter >= 2) ? (lbyte >> 4) : (lbyte & 0xF);
  const int hi = (qh[l] >> (2 * quarter)) & 3;
  return lo | (hi << 4);
}

}  // namespace alspec::kernels
