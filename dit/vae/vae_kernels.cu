// CUDA kernels of the Wan VAE decoder (declared in vae_kernels_cuda.h) on channels-last frames, activations
// fp32 or bf16, math in fp32. Memory-bound and simple on purpose: grid-stride loops, one warp per pixel for
// the channel norm (its C values are contiguous, so the warp's loads coalesce), one block per softmax row.
// Each kernel has at most three type instances.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "dit/core/check_cuda.h"
#include "dit/vae/vae_kernels_cuda.h"

namespace vdit::vae::cuda {
namespace {

constexpr int kThreads = 256;

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

// Blocks for a grid-stride loop over n elements (capped: every thread loops).
inline unsigned grid_for(int64_t n) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, 65536)));
}

__device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16(v); }

#define VDIT_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); i += int64_t{gridDim.x} * blockDim.x)

template <class T>
__global__ void denorm_latent_kernel(T* dst, const float* z, const float* inv_std, const float* mean, int64_t Z,
                                     int64_t F, int64_t f, int64_t HW) {
  VDIT_GRID_STRIDE(i, Z * HW) {
    const int64_t p = i / Z, c = i % Z;
    store(dst, i, z[(c * F + f) * HW + p] / inv_std[c] + mean[c]);
  }
}

// One warp per pixel; each lane sums squares over channels lane, lane + 32, ... in double, like the CPU.
template <class Tin, class Tout>
__global__ void rms_norm_kernel(Tout* dst, const Tin* src, const float* bias, const float* gamma, int64_t C,
                                int64_t N, bool silu, float scale) {
  const int64_t warp = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= N) return;  // uniform per warp
  const Tin* x = src + warp * C;
  Tout* y = dst + warp * C;
  double ss = 0;
  for (int64_t c = lane; c < C; c += 32) {
    const float v = load(x, c) + (bias ? bias[c] : 0.f);
    ss += static_cast<double>(v) * v;
  }
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  const float inv = scale / fmaxf(static_cast<float>(sqrt(ss)), 1e-12f);
  for (int64_t c = lane; c < C; c += 32) {
    const float v = (load(x, c) + (bias ? bias[c] : 0.f)) * inv * gamma[c];
    store(y, c, silu ? v / (1.f + expf(-v)) : v);
  }
}

template <class T>
__global__ void add_bias_residual_kernel(T* y, const float* bias, const T* res, const float* res_bias, int64_t C,
                                         int64_t n) {
  VDIT_GRID_STRIDE(i, n) {
    const int64_t c = i % C;
    float v = load(y, i);
    if (bias) v += bias[c];
    if (res) v += load(res, i) + (res_bias ? res_bias[c] : 0.f);
    store(y, i, v);
  }
}

template <class T>
__global__ void add_f32_residual_kernel(T* y, const float* a, const T* x, int64_t n) {
  VDIT_GRID_STRIDE(i, n) { store(y, i, a[i] + load(x, i)); }
}

// Copies elements as raw words of their size (E = float or uint16_t).
template <class E>
__global__ void upsample2x_kernel(E* dst, const E* src, int64_t H, int64_t W, int64_t C) {
  const int64_t Wo = 2 * W;
  VDIT_GRID_STRIDE(i, 4 * H * W * C) {
    const int64_t c = i % C, p = i / C, x = p % Wo, y = p / Wo;
    dst[i] = src[((y >> 1) * W + (x >> 1)) * C + c];
  }
}

// One block per row: max, then the sum of exponentials, then the normalized values.
__global__ void softmax_rows_kernel(float* s, int64_t cols, float scale) {
  __shared__ float red[32];
  float* row = s + blockIdx.x * cols;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, row[j]);
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  if (lane == 0) red[warp] = m;
  __syncthreads();
  m = red[0];
  for (int w = 1; w < warps; ++w) m = fmaxf(m, red[w]);
  __syncthreads();
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float e = expf((row[j] - m) * scale);
    row[j] = e;
    sum += e;
  }
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (lane == 0) red[warp] = sum;
  __syncthreads();
  sum = 0.f;
  for (int w = 0; w < warps; ++w) sum += red[w];
  const float inv = 1.f / sum;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) row[j] *= inv;
}

template <class T>
__global__ void to_planar_kernel(float* dst, const T* src, int64_t C, int64_t HW, bool clamp) {
  VDIT_GRID_STRIDE(i, C * HW) {
    const int64_t c = i / HW, p = i % HW;
    float v = load(src, p * C + c);
    if (clamp) v = fminf(1.f, fmaxf(-1.f, v));
    dst[i] = v;
  }
}

using bf16 = __nv_bfloat16;

}  // namespace

Status denorm_latent_frame(void* dst, bool dst_bf16, const float* z, const float* inv_std, const float* mean,
                           int64_t Z, int64_t F, int64_t f, int64_t HW, void* stream) {
  if (dst_bf16) {
    denorm_latent_kernel<<<grid_for(Z * HW), kThreads, 0, as_stream(stream)>>>(static_cast<bf16*>(dst), z, inv_std,
                                                                                mean, Z, F, f, HW);
  } else {
    denorm_latent_kernel<<<grid_for(Z * HW), kThreads, 0, as_stream(stream)>>>(static_cast<float*>(dst), z, inv_std,
                                                                                mean, Z, F, f, HW);
  }
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status rms_norm_channels_last(void* dst, bool dst_bf16, const void* src, bool src_bf16, const float* bias,
                              const float* gamma, int64_t C, int64_t N, bool silu, void* stream) {
  const unsigned blocks = static_cast<unsigned>((N * 32 + kThreads - 1) / kThreads);
  const float scale = std::sqrt(static_cast<float>(C));
  cudaStream_t s = as_stream(stream);
  if (!src_bf16 && !dst_bf16) {
    rms_norm_kernel<<<blocks, kThreads, 0, s>>>(static_cast<float*>(dst), static_cast<const float*>(src), bias, gamma,
                                               C, N, silu, scale);
  } else if (src_bf16 && dst_bf16) {
    rms_norm_kernel<<<blocks, kThreads, 0, s>>>(static_cast<bf16*>(dst), static_cast<const bf16*>(src), bias, gamma, C,
                                               N, silu, scale);
  } else if (src_bf16) {
    rms_norm_kernel<<<blocks, kThreads, 0, s>>>(static_cast<float*>(dst), static_cast<const bf16*>(src), bias, gamma,
                                               C, N, silu, scale);
  } else {
    return internal_error("rms_norm_channels_last: f32 input with bf16 output is not instantiated");
  }
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status add_bias_residual(void* y, bool bf16_act, const float* bias, const void* res, const float* res_bias, int64_t C,
                         int64_t N, void* stream) {
  if (bf16_act) {
    add_bias_residual_kernel<<<grid_for(C * N), kThreads, 0, as_stream(stream)>>>(
        static_cast<bf16*>(y), bias, static_cast<const bf16*>(res), res_bias, C, C * N);
  } else {
    add_bias_residual_kernel<<<grid_for(C * N), kThreads, 0, as_stream(stream)>>>(
        static_cast<float*>(y), bias, static_cast<const float*>(res), res_bias, C, C * N);
  }
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status add_f32_residual(void* y, bool bf16_act, const float* a, const void* x, int64_t n, void* stream) {
  if (bf16_act) {
    add_f32_residual_kernel<<<grid_for(n), kThreads, 0, as_stream(stream)>>>(static_cast<bf16*>(y), a,
                                                                             static_cast<const bf16*>(x), n);
  } else {
    add_f32_residual_kernel<<<grid_for(n), kThreads, 0, as_stream(stream)>>>(static_cast<float*>(y), a,
                                                                             static_cast<const float*>(x), n);
  }
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status upsample_nearest2x(void* dst, const void* src, bool bf16_act, int64_t H, int64_t W, int64_t C, void* stream) {
  if (bf16_act) {
    upsample2x_kernel<<<grid_for(4 * H * W * C), kThreads, 0, as_stream(stream)>>>(
        static_cast<uint16_t*>(dst), static_cast<const uint16_t*>(src), H, W, C);
  } else {
    upsample2x_kernel<<<grid_for(4 * H * W * C), kThreads, 0, as_stream(stream)>>>(
        static_cast<float*>(dst), static_cast<const float*>(src), H, W, C);
  }
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status softmax_rows(float* s, int64_t rows, int64_t cols, float scale, void* stream) {
  if (rows > 0x7fffffff) return invalid_argument("softmax_rows: too many rows for one grid");
  softmax_rows_kernel<<<static_cast<unsigned>(rows), kThreads, 0, as_stream(stream)>>>(s, cols, scale);
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status to_planar(float* dst, const void* src, bool src_bf16, int64_t C, int64_t HW, bool clamp, void* stream) {
  if (src_bf16) {
    to_planar_kernel<<<grid_for(C * HW), kThreads, 0, as_stream(stream)>>>(dst, static_cast<const bf16*>(src), C, HW,
                                                                           clamp);
  } else {
    to_planar_kernel<<<grid_for(C * HW), kThreads, 0, as_stream(stream)>>>(dst, static_cast<const float*>(src), C, HW,
                                                                           clamp);
  }
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

}  // namespace vdit::vae::cuda
