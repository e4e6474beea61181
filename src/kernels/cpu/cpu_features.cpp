#include "alspec/kernels/cpu_features.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

#include "alspec/core/error.h"

namespace alspec {
namespace {

CpuFeatures probe() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.f16c = __builtin_cpu_supports("f16c");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512vnni = __builtin_cpu_supports("avx512vnni");
  f.avx512vbmi = __builtin_cpu_supports("avx512vbmi");
#endif
  return f;
}

SimdLevel env_cap() {
  const char* v = std::getenv("ALSPEC_SIMD");
  if (v == nullptr || *v == '\0') return SimdLevel::kAvx512;
  const std::string s(v);
  if (s == "scalar") return SimdLevel::kScalar;
  if (s == "avx2") return SimdLevel::kAvx2;
  if (s == "avx512") return SimdLevel::kAvx512;
  throw_invalid_argument("ALSPEC_SIMD: unknown level '" + s + "' (expected scalar, avx2 or avx512)");
}

std::atomic<int> g_cap{static_cast<int>(SimdLevel::kAvx512)};

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = probe();
  return features;
}

SimdLevel detected_simd_level() {
  const auto& f = cpu_features();
  if (!(f.avx2 && f.fma && f.f16c)) return SimdLevel::kScalar;
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni && f.avx512vbmi) {
    return SimdLevel::kAvx512;
  }
  return SimdLevel::kAvx2;
}

SimdLevel simd_level() {
  static const SimdLevel cap = std::min(detected_simd_level(), env_cap());
  return std::min(cap, static_cast<SimdLevel>(g_cap.load(std::memory_order_relaxed)));
}

SimdLevel set_simd_level(SimdLevel cap) {
  g_cap.store(static_cast<int>(cap), std::memory_order_relaxed);
  return simd_level();
}

std::string_view simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar: return "scalar";
    case SimdLevel::kAvx2: return "avx2";
    case SimdLevel::kAvx512: return "avx512";
  }
  return "unknown";
}

}  // namespace alspec
