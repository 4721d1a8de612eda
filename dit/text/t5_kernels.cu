// UMT5 encoder kernels (t5_kernels.h). Plain scalar code: at text lengths (L <= 512) these kernels move a
// few MB per layer, next to 200 GFLOP of GEMMs, so they are written for clarity, not peak bandwidth. Each
// template has two instances (bf16 or fp32 activations); row kernels run one block per row and re-read the
// row from L1/L2 instead of holding it, so one kernel serves every width.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "dit/core/check_cuda.h"
#include "dit/text/t5_kernels.h"

namespace vdit::text::cuda {
namespace {

using bf16 = __nv_bfloat16;

cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

__device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const bf16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(bf16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }

// Reduction over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
template <bool kMax>
__device__ float block_reduce(float v) {
  __shared__ float partial[32];
  for (int off = 16; off > 0; off >>= 1) {
    const float o = __shfl_xor_sync(0xffffffffu, v, off);
    v = kMax ? fmaxf(v, o) : v + o;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // the previous call's readers are done with `partial`
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  float r = partial[0];
  for (int i = 1; i < static_cast<int>(blockDim.x >> 5); ++i) r = kMax ? fmaxf(r, partial[i]) : r + partial[i];
  return r;
}

int row_threads(int64_t n) { return static_cast<int>(std::clamp<int64_t>((n + 31) / 32 * 32, 32, 256)); }

unsigned grid_1d(int64_t n, int threads) {
  return static_cast<unsigned>(std::min<int64_t>((n + threads - 1) / threads, int64_t{1} << 20));
}

template <class T>
__global__ void embed_kernel(float* x, const T* table, const int32_t* ids, int64_t L, int64_t D) {
  const int64_t n = L * D;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / D, d = e - i * D;
    x[e] = load(table, static_cast<int64_t>(ids[i]) * D + d);
  }
}

template <class TY, class TO>
__global__ void add_rms_norm_kernel(T5NormParams p) {
  float* x = p.x + blockIdx.x * p.D;
  const TY* y = p.y ? static_cast<const TY*>(p.y) + blockIdx.x * p.D : nullptr;
  TO* out = static_cast<TO*>(p.out) + blockIdx.x * p.D;
  float sq = 0.f;
  for (int64_t c = threadIdx.x; c < p.D; c += blockDim.x) {
    float v = x[c];
    if (y) {
      v += load(y, c);
      x[c] = v;  // re-read below by this same thread
    }
    sq += v * v;
  }
  const float inv = rsqrtf(block_reduce<false>(sq) / static_cast<float>(p.D) + p.eps);
  for (int64_t c = threadIdx.x; c < p.D; c += blockDim.x) store(out, c, x[c] * inv * p.weight[c]);
}

// One block per (query i, head h) row; three passes over the row's scores (max, sum, write).
template <class TP>
__global__ void softmax_bias_kernel(T5SoftmaxParams p) {
  const int64_t i = blockIdx.x, h = blockIdx.y, L = p.L;
  const float* s = p.scores + (h * L + i) * p.ld;
  TP* out = static_cast<TP*>(p.probs) + (h * L + i) * p.ld;
  const int32_t* bk = p.buckets + (L - 1 - i);  // bk[j] = bucket of r = j - i
  auto logit = [&](int64_t j) { return s[j] + p.table[static_cast<int64_t>(bk[j]) * p.num_heads + h]; };
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < L; j += blockDim.x) {
    if (!p.key_mask || p.key_mask[j]) mx = fmaxf(mx, logit(j));
  }
  mx = block_reduce<true>(mx);
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < L; j += blockDim.x) {
    if (!p.key_mask || p.key_mask[j]) sum += expf(logit(j) - mx);
  }
  const float inv = 1.f / block_reduce<false>(sum);
  for (int64_t j = threadIdx.x; j < L; j += blockDim.x) {
    const bool valid = !p.key_mask || p.key_mask[j];
    store(out, j, valid ? expf(logit(j) - mx) * inv : 0.f);
  }
}

template <class T>
__global__ void gated_gelu_kernel(T* out, const T* gu, int64_t rows, int64_t F) {
  const float k = 0.7978845608028654f;  // sqrt(2/pi)
  const int64_t n = rows * F;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / F, f = e - r * F;
    const float g = load(gu, r * 2 * F + f), u = load(gu, r * 2 * F + F + f);
    store(out, e, 0.5f * g * (1.f + tanhf(k * (g + 0.044715f * g * g * g))) * u);
  }
}

}  // namespace

Status t5_embed(float* x, const void* table, bool table_bf16, const int32_t* ids, int64_t L, int64_t D,
                void* stream) {
  if (L <= 0) return Status::ok();
  const unsigned grid = grid_1d(L * D, 256);
  if (table_bf16) {
    embed_kernel<<<grid, 256, 0, as_stream(stream)>>>(x, static_cast<const bf16*>(table), ids, L, D);
  } else {
    embed_kernel<<<grid, 256, 0, as_stream(stream)>>>(x, static_cast<const float*>(table), ids, L, D);
  }
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status t5_add_rms_norm(const T5NormParams& p, void* stream) {
  if (p.rows <= 0) return Status::ok();
  if (!p.x || !p.out || !p.weight || p.D <= 0 || p.rows > 0x7fffffff) {
    return invalid_argument(strfmt("t5_add_rms_norm: bad arguments (rows %lld, D %lld)", (long long)p.rows,
                                   (long long)p.D));
  }
  const unsigned grid = static_cast<unsigned>(p.rows);
  const int threads = row_threads(p.D);
  cudaStream_t s = as_stream(stream);
  // The residual input y has the activation dtype, as does the output, except the final norm (fp32 out).
  if (p.y_bf16 && p.out_bf16) {
    add_rms_norm_kernel<bf16, bf16><<<grid, threads, 0, s>>>(p);
  } else if (p.y_bf16) {
    add_rms_norm_kernel<bf16, float><<<grid, threads, 0, s>>>(p);
  } else if (!p.out_bf16) {
    add_rms_norm_kernel<float, float><<<grid, threads, 0, s>>>(p);
  } else {
    return invalid_argument("t5_add_rms_norm: fp32 residual input with bf16 output is not a T5 combination");
  }
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status t5_softmax_bias(const T5SoftmaxParams& p, void* stream) {
  if (p.L <= 0 || p.num_heads <= 0) return Status::ok();
  if (!p.scores || !p.probs || !p.table || !p.buckets || p.ld < p.L || p.L > 0x7fffffff || p.num_heads > 65535) {
    return invalid_argument(strfmt("t5_softmax_bias: bad arguments (L %lld, ld %lld, heads %lld)", (long long)p.L,
                                   (long long)p.ld, (long long)p.num_heads));
  }
  const dim3 grid(static_cast<unsigned>(p.L), static_cast<unsigned>(p.num_heads));
  const int threads = std::min(128, row_threads(p.L));
  if (p.probs_bf16) {
    softmax_bias_kernel<bf16><<<grid, threads, 0, as_stream(stream)>>>(p);
  } else {
    softmax_bias_kernel<float><<<grid, threads, 0, as_stream(stream)>>>(p);
  }
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status t5_gated_gelu(void* out, const void* gu, bool bf16_act, int64_t rows, int64_t F, void* stream) {
  if (rows <= 0 || F <= 0) return Status::ok();
  const unsigned grid = grid_1d(rows * F, 256);
  if (bf16_act) {
    gated_gelu_kernel<<<grid, 256, 0, as_stream(stream)>>>(static_cast<bf16*>(out), static_cast<const bf16*>(gu),
                                                            rows, F);
  } else {
    gated_gelu_kernel<<<grid, 256, 0, as_stream(stream)>>>(static_cast<float*>(out), static_cast<const float*>(gu),
                                                            rows, F);
  }
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

}  // namespace vdit::text::cuda
