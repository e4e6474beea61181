#include "alspec/kernels/cpu_features.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <utility>

#include "alspec/core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

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

std::string cpu_model_name() {
  std::string name;
#if defined(__x86_64__) || defined(__i386__)
  unsigned max_ext = __get_cpuid_max(0x80000000u, nullptr);
  if (max_ext >= 0x80000004u) {
    for (unsigned leaf = 0x80000002u; leaf <= 0x80000004u; ++leaf) {
      unsigned r[4] = {0, 0, 0, 0};
      __get_cpuid(leaf, &r[0], &r[1], &r[2], &r[3]);
      for (unsigned x : r) {
        for (int b = 0; b < 4; ++b) {
          const char c = static_cast<char>((x >> (8 * b)) & 0xFF);
          if (c != '\0') name.push_back(c);
        }
      }
    }
  }
#endif
  const size_t first = name.find_first_not_of(' ');
  if (first == std::string::npos) return "unknown";
  const size_t last = name.find_last_not_of(' ');
  return name.substr(first, last - first + 1);
}

std::string cpu_feature_list() {
  const auto& f = cpu_features();
  const std::pair<const char*, bool> all[] = {
      {"avx2", f.avx2},         {"fma", f.fma},           {"f16c", f.f16c},
      {"avx512f", f.avx512f},   {"avx512bw", f.avx512bw}, {"avx512vl", f.avx512vl},
      {"avx512dq", f.avx512dq}, {"avx512vnni", f.avx512vnni}, {"avx512vbmi", f.avx512vbmi}};
  std::string out;
  for (const auto& [name, on] : all) {
    if (!on) continue;
    if (!out.empty()) out += ' ';
    out += name;
  }
  return out.empty() ? "none" : out;
}

}  // namespace alspec
