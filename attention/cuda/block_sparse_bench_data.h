// Deterministic pseudo-random attention inputs for benchmarks: a counter-based hash gives element i of a
// buffer the same value on the GPU (fill_bench_data) and on the host (bench_uniform, then the same
// round-to-nearest-even to bf16/f16), so a benchmark can check GPU results on the CPU without copying
// whole tensors back. Uniform in [-amplitude, amplitude); not a statistical-quality generator.
#pragma once

#include <cstdint>

#include "attention/device_attention.h"
#include "dit/core/status.h"

#if defined(__CUDACC__)
#define VDIT_BENCH_HD __host__ __device__
#else
#define VDIT_BENCH_HD
#endif

namespace vdit::attn {

inline VDIT_BENCH_HD float bench_uniform(uint64_t seed, uint64_t i, float amplitude) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 0x632BE59BD9B4E019ull;  // splitmix64
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  const float u = static_cast<float>(static_cast<uint32_t>(z >> 40)) * (1.0f / 8388608.0f) - 1.0f;  // exact
  return u * amplitude;
}

// dst[i] = io(bench_uniform(seed, i, amplitude)) for i < n, on `stream` (cudaStream_t).
Status fill_bench_data(void* dst, DeviceDType dtype, int64_t n, uint64_t seed, float amplitude, void* stream);

}  // namespace vdit::attn
