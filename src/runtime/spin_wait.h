// Waiting on an atomic the way both the device workers and the local channel need it: spin
// briefly, then sleep in atomic::wait. Decode issues many short parallel loops and channel
// messages per token, and a futex wake costs more than a short spin; sleeping keeps idle
// devices off the cores.
#pragma once

#include <atomic>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace alspec::detail {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// ~100 us of pause: enough to cover the gaps between kernels.
inline constexpr int kSpinIterations = 2000;

struct NoCheck {
  void operator()() const {}
};

// Returns the first value of `a` for which ready(value) holds. `check` runs before every step and
// once more at the end; it may throw to end the wait (the channel's abort).
template <typename T, typename Ready, typename Check = NoCheck>
T spin_then_wait(const std::atomic<T>& a, Ready ready, Check check = {}) {
  T v = a.load(std::memory_order_acquire);
  for (int i = 0; !ready(v); ++i) {
    check();
    if (i < kSpinIterations) {
      cpu_relax();
    } else {
      a.wait(v, std::memory_order_acquire);
    }
    v = a.load(std::memory_order_acquire);
  }
  check();
  return v;
}

}  // namespace alspec::detail
