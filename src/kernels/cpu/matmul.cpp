// matvec/matmul: row blocks of kMatmulRowsPerTask rows per task, each output element computed by
// one dot kernel call, so the split and the thread count never change a result.
#include "alspec/kernels/matmul.h"

#include <algorithm>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/kernels/cpu_features.h"
#include "alspec/kernels/quant.h"
#include "kernels/cpu/dot_kernels.h"
#include "kernels/cpu/quantized_activation.h"

namespace alspec {
namespace {

using kernels::DotKernels;

const DotKernels& active_kernels() {
  switch (simd_level()) {
    case SimdLevel::kAvx512: return kernels::dot_kernels_avx512();
    case SimdLevel::kAvx2: return kernels::dot_kernels_avx2();
    case SimdLevel::kScalar: break;
  }
  return kernels::dot_kernels_scalar();
}

void validate(const WeightMatrix& w, const char* fn) {
  const std::string where = std::string(fn) + ": ";
  if (!is_compute_type(w.type)) throw_invalid_argument(where + "unsupported weight type " + std::string(dtype_name(w.type)));
  if (w.rows < 0 || w.cols < 0) throw_invalid_argument(where + "negative shape");
  const auto bytes = row_bytes_checked(w.type, static_cast<uint64_t>(w.cols));
  if (!bytes) {
    throw_invalid_argument(where + std::to_string(w.cols) + " columns is not a whole number of " +
                           std::string(dtype_name(w.type)) + " blocks");
  }
  if (w.row_bytes < *bytes) throw_invalid_argument(where + "row stride smaller than a row");
  if (w.rows > 0 && w.cols > 0 && w.data == nullptr) throw_invalid_argument(where + "null weight data");
}

kernels::QuantDot quant_kernel(const DotKernels& k, DType t) {
  switch (t) {
    case DType::Q8_0: return k.q8_0;
    case DType::Q4_0: return k.q4_0;
    case DType::Q4_K: return k.q4_k;
    case DType::Q6_K: return k.q6_k;
    case DType::Q4_1: return k.q4_1;
    case DType::Q5_0: return k.q5_0;
    default: return nullptr;
  }
}

kernels::FloatDot float_kernel(const DotKernels& k, DType t) {
  switch (t) {
    case DType::F32: return k.f32;
    case DType::F16: return k.f16;
    case DType::BF16: return k.bf16;
    default: return nullptr;
  }
}

constexpr int64_t kTokenTile = 16;

void run(Device& dev, const WeightMatrix& w, const float* x, int64_t n, float* y, const char* fn) {
  validate(w, fn);
  if (n < 0) throw_invalid_argument(std::string(fn) + ": negative token count");
  if (n == 0 || w.rows == 0) return;
  const auto* base = static_cast<const uint8_t*>(w.data);
  const int64_t tasks = (w.rows + kMatmulRowsPerTask - 1) / kMatmulRowsPerTask;
  const DotKernels& k = active_kernels();
  // Cache blocking: a task's rows (kMatmulRowsPerTask rows, tens of KiB) are read from memory once
  // and stay in L2 while tiles of kTokenTile activation rows pass over them; within a tile each
  // weight row is reused from L1 for every token. Each element is still one dot-kernel call.
  if (const auto qdot = quant_kernel(k, w.type)) {
    const kernels::QuantDot2 qdot2 = w.type == DType::Q4_0 ? k.q4_0_x2 : nullptr;
    thread_local kernels::QuantizedActivations caller_acts;
    // A named reference: inside the lambda `caller_acts` would name each worker's own instance.
    kernels::QuantizedActivations& acts = caller_acts;
    acts.prepare(n, w.cols, w.type == DType::Q4_0 && k.q4_0_uses_groups);
    dev.parallel_for(static_cast<size_t>(n), [&](size_t t, int) {
      acts.quantize_row(static_cast<int64_t>(t), x + static_cast<int64_t>(t) * w.cols);
    });
    std::vector<kernels::ActivationRow> rows(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) rows[static_cast<size_t>(t)] = acts.row(t);
    dev.parallel_for(static_cast<size_t>(tasks), [&](size_t task, int) {
      const int64_t r0 = static_cast<int64_t>(task) * kMatmulRowsPerTask;
      const int64_t r1 = std::min(w.rows, r0 + kMatmulRowsPerTask);
      for (int64_t t0 = 0; t0 < n; t0 += kTokenTile) {
        const int64_t t1 = std::min(n, t0 + kTokenTile);
        int64_t r = r0;
        if (qdot2) {  // two rows per call share the activation loads; per-row arithmetic unchanged
          for (; r + 1 < r1; r += 2) {
            const uint8_t* wr = base + static_cast<size_t>(r) * w.row_bytes;
            for (int64_t t = t0; t < t1; ++t) {
              float out[2];
              qdot2(wr, wr + w.row_bytes, rows[static_cast<size_t>(t)], out);
              y[t * w.rows + r] = out[0];
              y[t * w.rows + r + 1] = out[1];
            }
          }
        }
        for (; r < r1; ++r) {
          const uint8_t* wr = base + static_cast<size_t>(r) * w.row_bytes;
          for (int64_t t = t0; t < t1; ++t) y[t * w.rows + r] = qdot(wr, rows[static_cast<size_t>(t)]);
        }
      }
    });
    return;
  }
  const auto fdot = float_kernel(k, w.type);
  dev.parallel_for(static_cast<size_t>(tasks), [&](size_t task, int) {
    const int64_t r0 = static_cast<int64_t>(task) * kMatmulRowsPerTask;
    const int64_t r1 = std::min(w.rows, r0 + kMatmulRowsPerTask);
    for (int64_t t0 = 0; t0 < n; t0 += kTokenTile) {
      const int64_t t1 = std::min(n, t0 + kTokenTile);
      for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* wr = base + static_cast<size_t>(r) * w.row_bytes;
        for (int64_t t = t0; t < t1; ++t) y[t * w.rows + r] = fdot(wr, x + t * w.cols, w.cols);
      }
    }
  });
}

}  // namespace

void matvec(Device& dev, const WeightMatrix& w, const float* x, float* y) { run(dev, w, x, 1, y, "matvec"); }

void matmul(Device& dev, const WeightMatrix& w, const float* x, int64_t n, float* y) {
  run(dev, w, x, n, y, "matmul");
}

void matvec_reference(const WeightMatrix& w, const float* x, float* y) {
  validate(w, "matvec_reference");
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(w.type, static_cast<const uint8_t*>(w.data) + static_cast<size_t>(r) * w.row_bytes, row.data(),
                   w.cols);
    double acc = 0.0;
    for (int64_t e = 0; e < w.cols; ++e) acc += static_cast<double>(row[static_cast<size_t>(e)]) * x[e];
    y[r] = static_cast<float>(acc);
  }
}

}  // namespace alspec
