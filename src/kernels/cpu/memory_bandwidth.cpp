#include "alspec/kernels/memory_bandwidth.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/core/timer.h"
#include "alspec/kernels/cpu_features.h"

namespace alspec {
namespace {

constexpr size_t kChunk = size_t{1} << 20;

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

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

}  // namespace

BandwidthResult measure_read_bandwidth(Device& dev, size_t bytes, int repetitions) {
  if (repetitions < 1) throw_invalid_argument("measure_read_bandwidth: repetitions must be >= 1");
  const size_t chunks = std::max<size_t>(1, bytes / kChunk);
  const size_t total = chunks * kChunk;
  std::unique_ptr<uint64_t, FreeDeleter> buf(static_cast<uint64_t*>(std::aligned_alloc(64, total)));
  if (!buf) throw Error(ErrorKind::kRuntime, "measure_read_bandwidth: cannot allocate buffer");
  uint64_t* data = buf.get();
  const size_t words = kChunk / sizeof(uint64_t);
  // Written by the device's own threads so that pages are faulted in where they are read.
  dev.parallel_for(chunks, [&](size_t c, int) {
    for (size_t i = 0; i < words; ++i) data[c * words + i] = c * words + i;
  });
  const bool avx2 = simd_level() >= SimdLevel::kAvx2;
  std::vector<uint64_t> sinks(chunks);
  std::vector<double> times;
  for (int r = 0; r < repetitions; ++r) {
    const double t0 = now_seconds();
    dev.parallel_for(chunks, [&](size_t c, int) {
      sinks[c] = avx2 ? read_chunk_avx2(data + c * words, words) : read_chunk_scalar(data + c * words, words);
    });
    times.push_back(now_seconds() - t0);
  }
  uint64_t sink = 0;
  for (uint64_t s : sinks) sink ^= s;
  // XOR of 0..m has a closed form; checking it keeps the reads observable and the data intact.
  const uint64_t m = total / sizeof(uint64_t) - 1;
  const uint64_t expected = (m % 4 == 0) ? m : (m % 4 == 1) ? 1 : (m % 4 == 2) ? m + 1 : 0;
  if (sink != expected) throw Error(ErrorKind::kRuntime, "measure_read_bandwidth: checksum mismatch");
  std::sort(times.begin(), times.end());
  const double t = times[times.size() / 2];
  return {static_cast<double>(total) / t / 1e9, t, total};
}

}  // namespace alspec
