// Device-side counter-hash random fill of 16-bit float tensors (see device_fill.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "tests/cuda_attention_methods/device_fill.h"

namespace {
__device__ uint64_t mix64(uint64_t x) {  // splitmix64 finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__global__ void fill16(uint16_t* dst, int64_t n, uint64_t seed, float sigma, bool bf16) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float u = static_cast<float>(mix64(seed * 0x9e3779b97f4a7c15ull + i) >> 40) * (1.0f / 16777216.0f);
    const float x = sigma * 1.7320508f * (2.f * u - 1.f);
    dst[i] = bf16 ? __bfloat16_as_ushort(__float2bfloat16(x)) : __half_as_ushort(__float2half(x));
  }
}
}  // namespace

int planners_fill_16(void* dst, int64_t n, uint64_t seed, float sigma, bool bf16) {
  fill16<<<1024, 256>>>(static_cast<uint16_t*>(dst), n, seed, sigma, bf16);
  return cudaGetLastError() == cudaSuccess ? 0 : 1;
}
