#include "alspec/kernels/memory_bandwidth.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/core/page_buffer.h"
#include "alspec/core/timer.h"
#include "alspec/kernels/cpu_features.h"

namespace alspec {
namespace {

constexpr size_t kChunk = ReadProbeBuffer::kChunkBytes;
constexpr size_t kWords = kChunk / sizeof(uint64_t);

// XOR of all 64-bit words: one load per word, negligible arithmetic.
uint64_t read_chunk_scalar(const uint64_t* p, size_t words) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i < words; i += 4) {
    a ^= p[i];
    b ^= p[i + 1];
    c ^= p[i + 2];
    d ^= p[i + 3];
  }
  return a ^ b ^ c ^ d;
}

__attribute__((target("avx2"))) uint64_t read_chunk_avx2(const uint64_t* p, size_t words) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  const auto* v = reinterpret_cast<const __m256i*>(p);
  for (size_t i = 0; i < words / 4; i += 4) {
    a = _mm256_xor_si256(a, _mm256_load_si256(v + i));
    b = _mm256_xor_si256(b, _mm256_load_si256(v + i + 1));
    c = _mm256_xor_si256(c, _mm256_load_si256(v + i + 2));
    d = _mm256_xor_si256(d, _mm256_load_si256(v + i + 3));
  }
  const __m256i x = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
  alignas(32) uint64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), x);
  return out[0] ^ out[1] ^ out[2] ^ out[3];
}

// The fastest read loop we know on AVX-512 machines: 512-bit loads plus software prefetch into L2
// 8 KiB ahead (what the dot kernels do), so that the roofline is a true ceiling for them; plain
// 256-bit loads without prefetch read 8-11% less on the development machine.
constexpr size_t kPrefetchAhead = 8192;
__attribute__((target("avx512f"))) uint64_t read_chunk_avx512(const uint64_t* p, size_t words) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  const auto* v = reinterpret_cast<const __m512i*>(p);
  const char* bytes = reinterpret_cast<const char*>(p);
  const size_t n = words / 8;  // 64-byte vectors; chunks are whole multiples of 256 bytes
  for (size_t i = 0; i < n; i += 4) {
    const size_t ahead = i * 64 + kPrefetchAhead;
    if (ahead < n * 64) {
      _mm_prefetch(bytes + ahead, _MM_HINT_T1);
      _mm_prefetch(bytes + ahead + 64, _MM_HINT_T1);
      _mm_prefetch(bytes + ahead + 128, _MM_HINT_T1);
      _mm_prefetch(bytes + ahead + 192, _MM_HINT_T1);
    }
    a = _mm512_xor_si512(a, _mm512_load_si512(v + i));
    b = _mm512_xor_si512(b, _mm512_load_si512(v + i + 1));
    c = _mm512_xor_si512(c, _mm512_load_si512(v + i + 2));
    d = _mm512_xor_si512(d, _mm512_load_si512(v + i + 3));
  }
  const __m512i x = _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d));
  alignas(64) uint64_t out[8];
  _mm512_store_si512(reinterpret_cast<__m512i*>(out), x);
  uint64_t r = 0;
  for (uint64_t w : out) r ^= w;
  return r;
}

BandwidthResult make_result(double seconds, size_t bytes) {
  return {static_cast<double>(bytes) / seconds / 1e9, seconds, bytes};
}

}  // namespace

ReadProbeBuffer::ReadProbeBuffer(Device& dev, size_t bytes)
    : chunks_(std::max<size_t>(1, bytes / kChunk)), buf_(chunks_ * kChunk), sinks_(chunks_, 0) {
  auto* data = reinterpret_cast<uint64_t*>(buf_.data());
  dev.parallel_for(chunks_, [&](size_t c, int) {
    for (size_t i = 0; i < kWords; ++i) data[c * kWords + i] = c * kWords + i;
  });
}

double ReadProbeBuffer::read(Device& dev, size_t first, size_t count) {
  if (first > chunks_ || count > chunks_ - first) throw_invalid_argument("ReadProbeBuffer::read: chunks out of range");
  const SimdLevel level = simd_level();
  const auto* data = reinterpret_cast<const uint64_t*>(buf_.data());
  const double t0 = now_seconds();
  dev.parallel_for(count, [&](size_t i, int) {
    const size_t c = first + i;
    const uint64_t* p = data + c * kWords;
    sinks_[c] = level >= SimdLevel::kAvx512 ? read_chunk_avx512(p, kWords)
                : level >= SimdLevel::kAvx2 ? read_chunk_avx2(p, kWords)
                                            : read_chunk_scalar(p, kWords);
  });
  return now_seconds() - t0;
}

// XOR of 0..m has a closed form; checking it keeps the reads observable and the data intact.
void ReadProbeBuffer::check() const {
  uint64_t sink = 0;
  for (uint64_t s : sinks_) sink ^= s;
  const uint64_t m = chunks_ * kWords - 1;
  const uint64_t expected = (m % 4 == 0) ? m : (m % 4 == 1) ? 1 : (m % 4 == 2) ? m + 1 : 0;
  if (sink != expected) throw Error(ErrorKind::kRuntime, "memory bandwidth probe: checksum mismatch");
}

BandwidthResult measure_read_bandwidth(Device& dev, size_t bytes, int repetitions) {
  if (repetitions < 1) throw_invalid_argument("measure_read_bandwidth: repetitions must be >= 1");
  ReadProbeBuffer buf(dev, bytes);
  std::vector<double> times;
  for (int r = 0; r < repetitions; ++r) times.push_back(buf.read(dev, 0, buf.chunks()));
  buf.check();
  std::sort(times.begin(), times.end());
  return make_result(times[times.size() / 2], buf.bytes());
}

WindowedBandwidth measure_read_bandwidth_windowed(Device& dev, size_t bytes, size_t window_bytes, int passes) {
  if (passes < 1) throw_invalid_argument("measure_read_bandwidth_windowed: passes must be >= 1");
  ReadProbeBuffer buf(dev, bytes);
  const size_t window = std::clamp<size_t>(window_bytes / kChunk, 1, buf.chunks());
  const size_t windows = buf.chunks() / window;
  std::vector<double> times;
  for (int p = 0; p < passes; ++p) {
    for (size_t w = 0; w < windows; ++w) times.push_back(buf.read(dev, w * window, window));
  }
  if (windows * window == buf.chunks()) buf.check();
  std::sort(times.begin(), times.end());
  return {make_result(times[times.size() / 2], window * kChunk), make_result(times.front(), window * kChunk)};
}

}  // namespace alspec
