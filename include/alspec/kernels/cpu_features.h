// Runtime choice of the SIMD code path. The build targets generic x86-64; optimised kernels are
// compiled with per-function target attributes and selected here. ALSPEC_SIMD=scalar|avx2|avx512
// caps the level (for tests and A/B measurements); a level the CPU lacks is never selected.
#pragma once

#include <string>
#include <string_view>

namespace alspec {

// Only the features detected_simd_level() needs; add one when a kernel starts depending on it.
struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool avx512vbmi = false;
};

enum class SimdLevel {
  kScalar = 0,  // portable code; also the reference twin of every optimised kernel
  kAvx2 = 1,    // AVX2 + FMA + F16C
  kAvx512 = 2,  // AVX-512 F/BW/VL/DQ/VNNI/VBMI (on top of kAvx2), e.g. Ice Lake, Sapphire Rapids, Zen 4
};

// Probed once (cpuid via __builtin_cpu_supports).
const CpuFeatures& cpu_features();
// Best level this CPU supports.
SimdLevel detected_simd_level();
// Level the kernels use now: min(detected, ALSPEC_SIMD cap, set_simd_level cap).
// Throws Error(kInvalidArgument) when ALSPEC_SIMD holds an unknown name.
SimdLevel simd_level();
// Caps the level for this process (tests compare paths); returns the level now in effect.
SimdLevel set_simd_level(SimdLevel cap);
std::string_view simd_level_name(SimdLevel level);
// The CPU's brand string (cpuid leaves 0x80000002-4, e.g. "AMD EPYC 7763 64-Core Processor"),
// trimmed; "unknown" where there is none. For benchmark reports.
std::string cpu_model_name();
// The features behind the levels, for reports: e.g. "avx2 fma f16c avx512f ... avx512bf16".
std::string cpu_feature_list();

}  // namespace alspec
