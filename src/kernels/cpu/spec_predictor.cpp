// The page predictor's bounds and selection (see spec_predictor.h; the kernel use is in
// attention_decode.cpp).
// GCC 12's AVX-512 intrinsics use deliberately undefined registers (as in the other AVX-512 files).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "alspec/kernels/spec_predictor.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "alspec/core/error.h"
#include "alspec/kernels/cpu_features.h"

namespace alspec {

SpecPredictor parse_spec_predictor(const std::string& name) {
  if (name == "sink-window") return SpecPredictor::kSinkWindow;
  if (name == "quest") return SpecPredictor::kQuestPages;
  throw_invalid_argument("unknown predictor '" + name + "' (expected sink-window or quest)");
}

const char* spec_predictor_name(SpecPredictor p) {
  switch (p) {
    case SpecPredictor::kSinkWindow: return "sink-window";
    case SpecPredictor::kQuestPages: return "quest";
  }
  return "?";
}

void encode_key_page(const float* lo, const float* hi, int head_dim, KeyBound* record) {
  float amax = 0.0f;
  for (int i = 0; i < head_dim; ++i) amax = std::max({amax, std::abs(lo[i]), std::abs(hi[i])});
  // The smallest scale with 127 * s >= amax, so every bound fits [-127, 127] after rounding out.
  float s = amax / 127.0f;
  while (127.0f * s < amax) s = std::nextafter(s, std::numeric_limits<float>::infinity());
  auto* q_lo = reinterpret_cast<int8_t*>(record);
  int8_t* q_hi = q_lo + head_dim;
  for (int i = 0; i < head_dim; ++i) {
    int l = 0, h = 0;
    if (s > 0.0f) {
      // Rounded outwards: l * s <= lo and h * s >= hi (the division may be off by one step).
      l = std::clamp(static_cast<int>(std::floor(lo[i] / s)), -127, 127);
      if (static_cast<float>(l) * s > lo[i]) --l;
      h = std::clamp(static_cast<int>(std::ceil(hi[i] / s)), -127, 127);
      if (static_cast<float>(h) * s < hi[i]) ++h;
      l = std::max(l, -127);  // +-127 * s already bound every key of the page
      h = std::min(h, 127);
    }
    q_lo[i] = static_cast<int8_t>(l);
    q_hi[i] = static_cast<int8_t>(h);
  }
  std::memcpy(record + 2 * head_dim, &s, sizeof s);
}

float key_page_scale(const KeyBound* record, int head_dim) {
  float s;
  std::memcpy(&s, record + 2 * head_dim, sizeof s);
  return s;
}

void update_key_page_bounds(KeyBound* head_pages, float* staging, int64_t row, const float* key, int head_dim) {
  float* lo = staging;
  float* hi = staging + head_dim;
  if (row % kKeyPageRows == 0) {
    std::copy_n(key, head_dim, lo);
    std::copy_n(key, head_dim, hi);
  } else {
    for (int i = 0; i < head_dim; ++i) {
      lo[i] = std::min(lo[i], key[i]);
      hi[i] = std::max(hi[i], key[i]);
    }
  }
  if (row % kKeyPageRows == kKeyPageRows - 1) {
    encode_key_page(lo, hi, head_dim, head_pages + (row / kKeyPageRows) * key_page_record_bytes(head_dim));
  }
}

QuestLayout quest_layout(int64_t L, int spec_chunk) {
  const int64_t S = spec_chunk;
  QuestLayout q;
  q.sink_end = kKeyPageRows;
  // The window is the last S/2 rows; the pages compete are the complete ones below it (the rows
  // of a partial page just before the window are left to the middle chunks). A page-aligned
  // window would spend 0-31 more rows of the budget on it, most often one selected page fewer.
  q.window_begin = std::max(q.sink_end, L - S / 2);
  const int64_t fixed = q.sink_end + (L - q.window_begin);
  const int64_t middle_pages = (q.window_begin / kKeyPageRows * kKeyPageRows - q.sink_end) / kKeyPageRows;
  q.n_pages = std::clamp<int64_t>((2 * S - fixed) / kKeyPageRows, 0, middle_pages);
  return q;
}

int quest_query_limit(int head_dim) {
  const int64_t per_term = 2 * static_cast<int64_t>(head_dim) * 127;
  return static_cast<int>(std::min<int64_t>(32767, std::numeric_limits<int32_t>::max() / per_term));
}

namespace {

// Round to nearest, ties to even: std::nearbyint in the default rounding mode, for |x| <= 2^22
// (x + 1.5 * 2^23 lies in [2^23, 2^24), where floats are the integers). Inline arithmetic the
// compiler vectorises; nearbyintf was a libm call per element, a third of a warm selection.
inline float round_to_even(float x) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (x + kMagic) - kMagic;
}

// Scratch of one selection on the stack up to these sizes (beyond, on the heap): after the
// cache flush of a decode step every thread_local vector or allocation was another chain of
// cold misses before the first record arrived.
constexpr int kStackHeadDim = 256;
constexpr size_t kStackPages = 128;

// n elements of scratch: on the stack up to N, else on the heap.
template <typename T, size_t N>
class Scratch {
 public:
  explicit Scratch(size_t n) : data_(n <= N ? stack_ : (heap_.resize(n), heap_.data())) {}
  T* data() { return data_; }

 private:
  alignas(64) T stack_[N];
  std::vector<T> heap_;
  T* data_;
};

}  // namespace

void quantize_group_query(const float* q, int n_rep, int head_dim, int16_t* out) {
  const auto d = static_cast<size_t>(head_dim);
  Scratch<float, 2 * kStackHeadDim> scratch(2 * d);
  float* sums = scratch.data();
  float* __restrict q_neg = sums;
  float* __restrict q_pos = sums + d;
  std::fill_n(sums, 2 * d, 0.0f);
  for (int h = 0; h < n_rep; ++h) {  // in head order
    const float* __restrict qh = q + static_cast<size_t>(h) * d;
    for (size_t i = 0; i < d; ++i) {
      q_pos[i] += std::max(qh[i], 0.0f);
      q_neg[i] += std::min(qh[i], 0.0f);
    }
  }
  float qmax = 0.0f;
  for (size_t i = 0; i < d; ++i) qmax = std::max({qmax, q_pos[i], -q_neg[i]});
  const auto limit = static_cast<float>(quest_query_limit(head_dim));
  const float f = qmax > 0.0f ? limit / qmax : 0.0f;
  // |sums * f| <= limit (+ rounding) < 2^22: round_to_even is nearbyint here.
  for (size_t i = 0; i < 2 * d; ++i) {
    out[i] = static_cast<int16_t>(std::clamp(round_to_even(sums[i] * f), -limit, limit));
  }
}

namespace {

// Integer dot products of the quantised query qi [2 * head_dim] with the records of pages
// [first, end): exact in int32 (quest_query_limit), so every variant gives the same values.
using PageDotsFn = void (*)(const int16_t* qi, const KeyBound* pages, int64_t first, int64_t end, int head_dim,
                            int32_t* dots);

void page_dots_scalar(const int16_t* qi, const KeyBound* pages, int64_t first, int64_t end, int head_dim,
                      int32_t* dots) {
  const size_t rb = key_page_record_bytes(head_dim);
  const size_t n = 2 * static_cast<size_t>(head_dim);
  for (int64_t p = first; p < end; ++p) {
    const auto* b = reinterpret_cast<const int8_t*>(pages + static_cast<size_t>(p) * rb);
    int32_t acc = 0;
    for (size_t i = 0; i < n; ++i) acc += static_cast<int32_t>(qi[i]) * b[i];
    dots[p - first] = acc;
  }
}

#define ALSPEC_TARGET_AVX2 __attribute__((target("avx2")))
#define ALSPEC_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vnni")))

ALSPEC_TARGET_AVX2 inline int32_t hsum_avx2(__m256i acc) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// head_dim % 8 == 0: 16 bytes of a record per step, sign-extended to 16 lanes and vpmaddwd.
// No software prefetch: the records are one sequential stream, which the hardware prefetcher
// follows; requesting the first two lines of the record 8 ahead (as before) made the cold pass
// slower, ~1.5x at head_dim 128 (11.3 -> 7.3 us for 512 records after a flush, AVX-512; no
// difference at head_dim 64).
ALSPEC_TARGET_AVX2 void page_dots_avx2(const int16_t* qi, const KeyBound* pages, int64_t first, int64_t end,
                                       int head_dim, int32_t* dots) {
  const size_t rb = key_page_record_bytes(head_dim);
  const size_t n = 2 * static_cast<size_t>(head_dim);
  for (int64_t p = first; p < end; ++p) {
    const KeyBound* b = pages + static_cast<size_t>(p) * rb;
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m256i k0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
      const __m256i k1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 16)));
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(k0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qi + i))));
      acc1 = _mm256_add_epi32(acc1,
                              _mm256_madd_epi16(k1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qi + i + 16))));
    }
    for (; i < n; i += 16) {
      const __m256i k0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(k0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qi + i))));
    }
    dots[p - first] = hsum_avx2(_mm256_add_epi32(acc0, acc1));
  }
}

// head_dim % 16 == 0: 32 bytes per step into 32 lanes, vpdpwssd (VNNI, part of the AVX-512
// level): the same int32 sums as vpmaddwd + vpaddd (non-saturating) in one instruction. No
// software prefetch (see page_dots_avx2).
ALSPEC_TARGET_AVX512 void page_dots_avx512(const int16_t* qi, const KeyBound* pages, int64_t first, int64_t end,
                                           int head_dim, int32_t* dots) {
  const size_t rb = key_page_record_bytes(head_dim);
  const size_t n = 2 * static_cast<size_t>(head_dim);
  for (int64_t p = first; p < end; ++p) {
    const KeyBound* b = pages + static_cast<size_t>(p) * rb;
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
      const __m512i k0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i)));
      const __m512i k1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i + 32)));
      acc0 = _mm512_dpwssd_epi32(acc0, k0, _mm512_loadu_si512(qi + i));
      acc1 = _mm512_dpwssd_epi32(acc1, k1, _mm512_loadu_si512(qi + i + 32));
    }
    for (; i < n; i += 32) {
      const __m512i k0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i)));
      acc0 = _mm512_dpwssd_epi32(acc0, k0, _mm512_loadu_si512(qi + i));
    }
    dots[p - first] = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
  }
}

PageDotsFn page_dots_kernel(int head_dim) {
  const SimdLevel level = simd_level();
  if (level == SimdLevel::kAvx512 && head_dim % 16 == 0) return page_dots_avx512;
  if (level >= SimdLevel::kAvx2 && head_dim % 8 == 0) return page_dots_avx2;
  return page_dots_scalar;
}

}  // namespace

int64_t select_key_pages(const float* q, int n_rep, int head_dim, const KeyBound* head_pages,
                         const QuestLayout& layout, int64_t* pages) {
  const int64_t first = layout.sink_end / kKeyPageRows;
  const int64_t end = layout.window_begin / kKeyPageRows;
  const auto n = static_cast<size_t>(layout.n_pages);
  if (n == 0 || end <= first) return 0;
  Scratch<int16_t, 2 * kStackHeadDim> qi_scratch(2 * static_cast<size_t>(head_dim));
  Scratch<double, kStackPages> score_scratch(n);
  int16_t* qi = qi_scratch.data();
  double* top_score = score_scratch.data();
  quantize_group_query(q, n_rep, head_dim, qi);
  const PageDotsFn dots_fn = page_dots_kernel(head_dim);
  const size_t rb = key_page_record_bytes(head_dim);
  // The n best pages so far, best first, kept by insertion (a later page with an equal score
  // loses: ties to the lower page). The dots of up to kDotRun pages first, then their scores:
  // the stream of records keeps its misses in flight in a loop without data-dependent branches
  // (a mispredicted insertion branch squashes the loads issued after it).
  constexpr int64_t kDotRun = 512;
  alignas(64) int32_t dots[kDotRun];
  size_t kept = 0;
  for (int64_t r0 = first; r0 < end; r0 += kDotRun) {
    const int64_t r1 = std::min(r0 + kDotRun, end);
    dots_fn(qi, head_pages, r0, r1, head_dim, dots);
    for (int64_t p = r0; p < r1; ++p) {
      const double s = static_cast<double>(dots[p - r0]) *
                       static_cast<double>(key_page_scale(head_pages + static_cast<size_t>(p) * rb, head_dim));
      if (kept == n && !(s > top_score[n - 1])) continue;
      size_t at = kept < n ? kept++ : n - 1;
      for (; at > 0 && s > top_score[at - 1]; --at) {
        top_score[at] = top_score[at - 1];
        pages[at] = pages[at - 1];
      }
      top_score[at] = s;
      pages[at] = p;
    }
  }
  std::sort(pages, pages + kept);
  return static_cast<int64_t>(kept);
}

void select_key_pages(const float* q, int n_rep, int head_dim, const KeyBound* head_pages, const QuestLayout& layout,
                      std::vector<int64_t>& pages) {
  pages.resize(static_cast<size_t>(std::max<int64_t>(layout.n_pages, 0)));
  pages.resize(static_cast<size_t>(select_key_pages(q, n_rep, head_dim, head_pages, layout, pages.data())));
}

}  // namespace alspec
