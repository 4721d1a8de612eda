// Device-side smooth fill of bf16 [L, NH, HD] tensors over a video grid (see smooth_fill.h).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "tests/cuda_attention_methods/smooth_fill.h"

namespace {
__device__ uint64_t smooth_mix64(uint64_t x) {  // splitmix64 finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__device__ float unit(uint64_t seed, uint64_t i) {  // uniform in [0, 1)
  return static_cast<float>(smooth_mix64(seed * 0x9e3779b97f4a7c15ull + i) >> 40) * (1.0f / 16777216.0f);
}

__global__ void smooth16(uint16_t* dst, int64_t F, int64_t H, int64_t W, int NH, int HD, uint64_t seed, float noise) {
  const int64_t ld = static_cast<int64_t>(NH) * HD, n = F * H * W * ld;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / ld, e = i % ld;
    const int64_t f = t / (H * W), y = t / W % H, x = t % W;
    const uint64_t s = seed * 4 + 1;
    const float a = 0.3f * (2.f * unit(s, 4 * e) - 1.f), b = 0.3f * (2.f * unit(s, 4 * e + 1) - 1.f);
    const float c = 0.3f * (2.f * unit(s, 4 * e + 2) - 1.f), phi = 6.2831853f * unit(s, 4 * e + 3);
    const float r = noise * 1.7320508f * (2.f * unit(seed * 4 + 3, static_cast<uint64_t>(i)) - 1.f);
    const float v = 1.4142136f * sinf(a * f + b * y + c * x + phi) + r;
    dst[i] = __bfloat16_as_ushort(__float2bfloat16(v));
  }
}
}  // namespace

int planners_fill_smooth_bf16(void* dst, int64_t F, int64_t H, int64_t W, int NH, int HD, uint64_t seed, float noise) {
  smooth16<<<1024, 256>>>(static_cast<uint16_t*>(dst), F, H, W, NH, HD, seed, noise);
  return cudaGetLastError() == cudaSuccess ? 0 : 1;
}
