// CUDA kernels of rettention_device.h: elementwise, grid-stride, f32 arithmetic as the CPU method.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "attention/cuda/planners/rettention_device.h"
#include "dit/core/check_cuda.h"

namespace vdit::attn {
namespace {

template <class T>
__device__ float load16(const T* p, int64_t i);
template <>
__device__ float load16<__nv_bfloat16>(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
template <>
__device__ float load16<__half>(const __half* p, int64_t i) { return __half2float(p[i]); }

// One thread per (token, head, d) element; ρ of (head, token) recomputed per element (cheap) and written once.
template <class T>
__global__ void cache_update_kernel(float* rho, float* residual, const T* out, const T* o_band, const float* lse_full,
                                    const float* lse_band, int64_t L, int NH, int HD) {
  const int64_t n = L * NH * HD;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / HD;  // token · NH + head
    const int64_t t = row / NH;
    const int h = static_cast<int>(row % NH);
    const int64_t li = static_cast<int64_t>(h) * L + t;
    const float r = expf(lse_band[li] - lse_full[li]);
    if (i % HD == 0) rho[li] = r;
    residual[i] = load16(out, i) - r * load16(o_band, i);
  }
}

__global__ void rho_step_kernel(float* rho, int64_t n, float lambda, bool clamp) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float r = rho[i] + lambda;
    rho[i] = clamp ? fminf(r, 1.0f) : r;
  }
}

int grid_for(int64_t n, int threads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<int>(b < 4096 ? (b < 1 ? 1 : b) : 4096);
}

}  // namespace

Status rettention_cache_update(float* rho, float* residual, const void* out, const void* o_band, const float* lse_full,
                               const float* lse_band, int64_t L, int NH, int HD, DeviceDType dtype, void* stream) {
  const int64_t n = L * NH * HD;
  auto s = static_cast<cudaStream_t>(stream);
  if (dtype == DeviceDType::bf16) {
    cache_update_kernel<<<grid_for(n, 256), 256, 0, s>>>(rho, residual, static_cast<const __nv_bfloat16*>(out),
                                                         static_cast<const __nv_bfloat16*>(o_band), lse_full, lse_band,
                                                         L, NH, HD);
  } else {
    cache_update_kernel<<<grid_for(n, 256), 256, 0, s>>>(rho, residual, static_cast<const __half*>(out),
                                                         static_cast<const __half*>(o_band), lse_full, lse_band, L, NH,
                                                         HD);
  }
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status rettention_rho_step(float* rho, int64_t n, float lambda, bool clamp, void* stream) {
  rho_step_kernel<<<grid_for(n, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(rho, n, lambda, clamp);
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

}  // namespace vdit::attn
