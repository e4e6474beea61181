#include "alspec/kernels/matvec_benchmark.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/core/half.h"
#include "alspec/core/timer.h"
#include "alspec/kernels/matmul.h"
#include "alspec/kernels/quant.h"

namespace alspec {
namespace {

// Offsets of fp16 scale fields inside one block, so random bytes become finite, modest scales.
std::vector<size_t> scale_offsets(DType t) {
  switch (t) {
    case DType::Q8_0: case DType::Q4_0: return {0};
    case DType::Q5_0: return {0};
    case DType::Q4_1: case DType::Q4_K: return {0, 2};
    case DType::Q6_K: return {208};
    default: return {};
  }
}

}  // namespace

MatvecBenchmarkResult benchmark_matvec(Device& dev, DType type, int64_t rows, int64_t cols, size_t min_total_bytes,
                                       int repetitions, int64_t tokens) {
  if (!is_compute_type(type)) throw_invalid_argument("benchmark_matvec: unsupported type");
  if (repetitions < 1 || rows < 1 || tokens < 1) {
    throw_invalid_argument("benchmark_matvec: rows, repetitions and tokens must be >= 1");
  }
  const auto rb = row_bytes_checked(type, static_cast<uint64_t>(cols));
  if (!rb) throw_invalid_argument("benchmark_matvec: cols is not a whole number of blocks");
  const size_t bytes = *rb * static_cast<size_t>(rows);
  const int count = static_cast<int>(std::max<size_t>(1, (min_total_bytes + bytes - 1) / bytes));
  const auto& info = dtype_info(type);
  const auto offsets = scale_offsets(type);
  const uint16_t scale = fp32_to_fp16(0.01f);
  std::vector<std::vector<uint8_t>> mats(static_cast<size_t>(count));
  for (int m = 0; m < count; ++m) {
    auto& buf = mats[static_cast<size_t>(m)];
    buf.resize(bytes);
    // Filled in 1 MiB tasks on the device's threads (xorshift bytes; fp16 types get a bounded
    // exponent so that no value is inf/NaN).
    const size_t chunk = size_t{1} << 20;
    dev.parallel_for((bytes + chunk - 1) / chunk, [&](size_t c, int) {
      uint64_t s = 0x9E3779B97F4A7C15ull * (c + 1) + static_cast<uint64_t>(m);
      const size_t end = std::min(bytes, (c + 1) * chunk);
      for (size_t i = c * chunk; i < end; ++i) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        buf[i] = static_cast<uint8_t>(s);
        if ((type == DType::F16 || type == DType::BF16) && (i & 1)) buf[i] &= 0x3B;
      }
    });
    if (!offsets.empty()) {
      for (size_t b = 0; b < bytes / info.type_size; ++b) {
        for (size_t off : offsets) std::memcpy(buf.data() + b * info.type_size + off, &scale, 2);
      }
    }
    if (type == DType::F32) {
      for (size_t i = 0; i + 4 <= bytes; i += 4) {
        const float v = static_cast<float>(static_cast<int8_t>(buf[i])) / 128.0f;
        std::memcpy(buf.data() + i, &v, 4);
      }
    }
  }
  std::vector<float> x(static_cast<size_t>(cols * tokens)), y(static_cast<size_t>(rows * tokens));
  for (int64_t i = 0; i < cols * tokens; ++i) {
    x[static_cast<size_t>(i)] = static_cast<float>((i * 37) % 101 - 50) / 50.0f;
  }
  std::vector<double> times;
  for (int r = 0; r <= repetitions; ++r) {  // r == 0 warms up
    for (int m = 0; m < count; ++m) {
      const WeightMatrix w{type, mats[static_cast<size_t>(m)].data(), rows, cols, *rb};
      const double t0 = now_seconds();
      matmul(dev, w, x.data(), tokens, y.data());  // tokens == 1: matvec's path
      if (r > 0) times.push_back(now_seconds() - t0);
    }
  }
  std::sort(times.begin(), times.end());
  const double t = times[times.size() / 2];
  return {t, static_cast<double>(bytes) / t / 1e9, static_cast<double>(bytes) / times.front() / 1e9, bytes, count};
}

}  // namespace alspec
