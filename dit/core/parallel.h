// CPU threading: OpenMP-backed parallel loops (serial when OpenMP is absent). Every threaded CPU
// kernel goes through these so the thread count is set in one place (`set_num_threads`).
#pragma once

#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace vdit {

int num_threads();
void set_num_threads(int n);  // n <= 0 restores the default (all cores)

// Calls f(i) for i in [0, n) across threads; `f` must be safe to run concurrently for distinct i.
template <class F>
void parallel_for(int64_t n, F&& f) {
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
  for (int64_t i = 0; i < n; ++i) f(i);
#else
  for (int64_t i = 0; i < n; ++i) f(i);
#endif
}

// Same, with static scheduling over contiguous chunks: for cheap, uniform bodies (element-wise ops).
template <class F>
void parallel_for_static(int64_t n, F&& f) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n > 4096)
  for (int64_t i = 0; i < n; ++i) f(i);
#else
  for (int64_t i = 0; i < n; ++i) f(i);
#endif
}

}  // namespace vdit
