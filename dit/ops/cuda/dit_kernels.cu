// Element-wise CUDA kernels of the Wan DiT (dit_kernels.h). Row kernels run one block per token row with
// 16-byte vector loads; the row (<= 20 KB for D = 5120) is re-read from L1/L2 for the second and third
// passes instead of being held in registers, which keeps one kernel for every D. Only two template
// instances (fp32 or bf16 output of the LayerNorm); everything else is plain code.
#include <cuda_bf16.h>
#include <algorithm>
#include <cuda_runtime.h>

#include "dit/core/check_cuda.h"
#include "dit/core/rng.h"
#include "dit/ops/cuda/dit_kernels.h"

namespace vdit::ops::cuda {
namespace {

using bf16 = __nv_bfloat16;

cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

int row_threads(int64_t chunks) {
  const int64_t t = std::min<int64_t>(256, ((chunks + 31) / 32) * 32);
  return static_cast<int>(std::max<int64_t>(32, t));
}

unsigned grid_1d(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::min<int64_t>(blocks, 1 << 20));  // grid-stride loops cover the rest
}

// Sum over the block (blockDim.x a multiple of 32); every thread gets the result.
__device__ float block_sum(float v) {
  __shared__ float partial[32];
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // the previous call's readers are done with `partial`
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  float total = 0.f;
  const int warps = blockDim.x >> 5;
  for (int i = 0; i < warps; ++i) total += partial[i];
  return total;
}

__device__ float round_bf16(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

__device__ void load_bf16x4(const bf16* p, float out[4]) {
  const uint2 raw = *reinterpret_cast<const uint2*>(p);
  const __nv_bfloat162 a = *reinterpret_cast<const __nv_bfloat162*>(&raw.x);
  const __nv_bfloat162 b = *reinterpret_cast<const __nv_bfloat162*>(&raw.y);
  out[0] = __low2float(a);
  out[1] = __high2float(a);
  out[2] = __low2float(b);
  out[3] = __high2float(b);
}

__device__ void load_bf16x8(const bf16* p, float out[8]) {
  load_bf16x4(p, out);
  load_bf16x4(p + 4, out + 4);
}

__device__ void store_bf16x4(bf16* p, const float v[4]) {
  __nv_bfloat162 a = __floats2bfloat162_rn(v[0], v[1]);
  __nv_bfloat162 b = __floats2bfloat162_rn(v[2], v[3]);
  uint2 raw;
  raw.x = *reinterpret_cast<const uint32_t*>(&a);
  raw.y = *reinterpret_cast<const uint32_t*>(&b);
  *reinterpret_cast<uint2*>(p) = raw;
}

template <bool kOutBf16>
__global__ void add_layer_norm_kernel(AddNormParams p) {
  const int64_t row = blockIdx.x;
  float* x = p.x + row * p.D;
  const bf16* y = p.y ? static_cast<const bf16*>(p.y) + row * p.D : nullptr;
  const int n4 = static_cast<int>(p.D / 4);
  const float inv_d = 1.f / static_cast<float>(p.D);

  float sum = 0.f;
  for (int c = threadIdx.x; c < n4; c += blockDim.x) {
    float4 v = reinterpret_cast<const float4*>(x)[c];
    if (y) {
      float t[4];
      load_bf16x4(y + 4 * c, t);
      if (p.gate) {
        const float4 g = reinterpret_cast<const float4*>(p.gate)[c];
        t[0] *= g.x, t[1] *= g.y, t[2] *= g.z, t[3] *= g.w;
      }
      v.x += t[0], v.y += t[1], v.z += t[2], v.w += t[3];
      reinterpret_cast<float4*>(x)[c] = v;  // re-read below by this same thread
    }
    sum += (v.x + v.y) + (v.z + v.w);
  }
  const float mean = block_sum(sum) * inv_d;
  float sq = 0.f;
  for (int c = threadIdx.x; c < n4; c += blockDim.x) {
    const float4 v = reinterpret_cast<const float4*>(x)[c];
    const float a = v.x - mean, b = v.y - mean, d = v.z - mean, e = v.w - mean;
    sq += (a * a + b * b) + (d * d + e * e);
  }
  const float rstd = rsqrtf(block_sum(sq) * inv_d + p.eps);
  for (int c = threadIdx.x; c < n4; c += blockDim.x) {
    const float4 v = reinterpret_cast<const float4*>(x)[c];
    float o[4] = {(v.x - mean) * rstd, (v.y - mean) * rstd, (v.z - mean) * rstd, (v.w - mean) * rstd};
    float4 m = p.mul ? reinterpret_cast<const float4*>(p.mul)[c] : make_float4(0.f, 0.f, 0.f, 0.f);
    if (p.one_plus) {
      m.x += 1.f, m.y += 1.f, m.z += 1.f, m.w += 1.f;
    } else if (!p.mul) {
      m = make_float4(1.f, 1.f, 1.f, 1.f);
    }
    const float4 a = p.add ? reinterpret_cast<const float4*>(p.add)[c] : make_float4(0.f, 0.f, 0.f, 0.f);
    const float mm[4] = {m.x, m.y, m.z, m.w}, aa[4] = {a.x, a.y, a.z, a.w};
    for (int k = 0; k < 4; ++k) {
      if (p.round_norm_bf16) o[k] = round_bf16(o[k]);
      o[k] = __fadd_rn(__fmul_rn(o[k], mm[k]), aa[k]);  // norm·(1 + scale) + shift, unfused as PyTorch
    }
    if constexpr (kOutBf16) {
      store_bf16x4(static_cast<bf16*>(p.out) + row * p.D + 4 * c, o);
    } else {
      reinterpret_cast<float4*>(static_cast<float*>(p.out) + row * p.D)[c] = make_float4(o[0], o[1], o[2], o[3]);
    }
  }
}

// Chunks of 8 elements each thread keeps in registers between the two passes (D <= 8·kQkChunks·1024).
constexpr int kQkChunks = 4;

__global__ void qk_norm_rope_kernel(QkNormParams p) {
  const int which = blockIdx.y;
  const int64_t row = blockIdx.x;
  const bf16* src = static_cast<const bf16*>(p.src[which]) + row * p.src_ld;
  bf16* dst = static_cast<bf16*>(p.dst[which]) + row * p.D;
  const float* w = p.weight[which];
  const int n8 = static_cast<int>(p.D / 8);
  if (!w) {  // plain gather (uniform over the block, so no barrier is skipped by part of it)
    for (int c = threadIdx.x; c < n8; c += blockDim.x)
      reinterpret_cast<uint4*>(dst)[c] = reinterpret_cast<const uint4*>(src)[c];
    return;
  }
  float v[kQkChunks][8];
  float sq = 0.f;
#pragma unroll
  for (int i = 0; i < kQkChunks; ++i) {
    const int c = threadIdx.x + i * blockDim.x;
    if (c < n8) {
      load_bf16x8(src + 8 * c, v[i]);
      for (int k = 0; k < 8; ++k) sq += v[i][k] * v[i][k];
    }
  }
  const float rms = rsqrtf(block_sum(sq) / static_cast<float>(p.D) + p.eps);

  // Grid position of this token and the table offset of each axis (tables are small: int is enough).
  int base[3] = {0, 0, 0};
  if (p.cos) {
    const int fi = static_cast<int>(row / (p.gh * p.gw)), hi = static_cast<int>((row / p.gw) % p.gh);
    const int wi = static_cast<int>(row % p.gw);
    const int off1 = static_cast<int>(p.gf) * p.pairs[0], off2 = off1 + static_cast<int>(p.gh) * p.pairs[1];
    base[0] = fi * p.pairs[0];
    base[1] = off1 + hi * p.pairs[1] - p.pairs[0];                // + j for pair j of axis 1
    base[2] = off2 + wi * p.pairs[2] - p.pairs[0] - p.pairs[1];   // + j for pair j of axis 2
  }
  const int split1 = p.pairs[0], split2 = p.pairs[0] + p.pairs[1];
#pragma unroll
  for (int i = 0; i < kQkChunks; ++i) {
    const int c = threadIdx.x + i * blockDim.x;
    if (c >= n8) continue;
    float* e = v[i];
    const float4 wa = reinterpret_cast<const float4*>(w)[2 * c];
    const float4 wb = reinterpret_cast<const float4*>(w)[2 * c + 1];
    const float ww[8] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
    for (int k = 0; k < 8; ++k) e[k] = round_bf16(e[k] * rms) * ww[k];
    if (p.cos) {
      const int j0 = ((8 * c) % p.HD) / 2;  // first complex pair of this chunk within its head
      for (int k = 0; k < 4; ++k) {
        const int j = j0 + k;
        const int t = j + (j < split1 ? base[0] : j < split2 ? base[1] : base[2]);
        const float cs = p.cos[t], sn = p.sin[t];
        const float re = e[2 * k], im = e[2 * k + 1];
        e[2 * k] = re * cs - im * sn;
        e[2 * k + 1] = re * sn + im * cs;
      }
    }
    store_bf16x4(dst + 8 * c, e);
    store_bf16x4(dst + 8 * c + 4, e + 4);
  }
}

__global__ void patchify_kernel(bf16* tokens, const float* x, int64_t C, int64_t F, int64_t H, int64_t W, int pt,
                                int ph, int pw) {
  const int64_t gh = H / ph, gw = W / pw, gf = F / pt;
  const int64_t K = C * pt * ph * pw;
  const int64_t n = gf * gh * gw * K;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t l = i / K, k = i % K;
    const int64_t c = k / (pt * ph * pw), kt = (k / (ph * pw)) % pt, kh = (k / pw) % ph, kw = k % pw;
    const int64_t fi = l / (gh * gw), hi = (l / gw) % gh, wi = l % gw;
    tokens[i] = __float2bfloat16_rn(x[((c * F + fi * pt + kt) * H + hi * ph + kh) * W + wi * pw + kw]);
  }
}

__global__ void unpatchify_kernel(float* out, const float* y, int64_t C, int64_t F, int64_t H, int64_t W, int pt,
                                  int ph, int pw) {
  const int64_t gh = H / ph, gw = W / pw;
  const int64_t K = C * pt * ph * pw;
  const int64_t n = C * F * H * W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = i % W, h = (i / W) % H, f = (i / (W * H)) % F, c = i / (W * H * F);
    const int64_t l = ((f / pt) * gh + h / ph) * gw + w / pw;
    const int64_t k = (((f % pt) * ph + h % ph) * pw + w % pw) * C + c;
    out[i] = y[l * K + k];
  }
}

__global__ void add_broadcast_kernel(float* out, const float* a, const float* b, int64_t n, int64_t period) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i % period];
}

__global__ void silu_kernel(float* out, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = x[i];
    out[i] = v / (1.f + expf(-v));
  }
}

__global__ void bf16_to_f32_kernel(float* out, const bf16* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __bfloat162float(x[i]);
}

__global__ void fill_gaussian_kernel(void* dst, bool is_bf16, int64_t n, uint64_t seed, float scale, float offset) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = offset + scale * gaussian_at(seed, static_cast<uint64_t>(i));
    if (is_bf16) {
      static_cast<bf16*>(dst)[i] = __float2bfloat16_rn(v);
    } else {
      static_cast<float*>(dst)[i] = v;
    }
  }
}

}  // namespace

Status add_layer_norm(const AddNormParams& p, void* stream) {
  if (p.rows <= 0) return Status::ok();
  if (p.D % 8 != 0 || !p.x || !p.out) return invalid_argument(strfmt("add_layer_norm: D = %lld must be a multiple of 8", (long long)p.D));
  const int threads = row_threads(p.D / 16);
  if (p.out_bf16) {
    add_layer_norm_kernel<true><<<static_cast<unsigned>(p.rows), threads, 0, as_stream(stream)>>>(p);
  } else {
    add_layer_norm_kernel<false><<<static_cast<unsigned>(p.rows), threads, 0, as_stream(stream)>>>(p);
  }
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status qk_norm_rope(const QkNormParams& p, void* stream) {
  if (p.rows <= 0) return Status::ok();
  if (p.D % 8 != 0 || p.HD % 8 != 0 || p.count < 1 || p.count > 3) {
    return invalid_argument(strfmt("qk_norm_rope: D = %lld and head_dim = %d must be multiples of 8", (long long)p.D, p.HD));
  }
  const int64_t per_thread = (p.D / 8 + kQkChunks - 1) / kQkChunks;  // threads needed
  if (per_thread > 1024) {
    return unsupported(strfmt("qk_norm_rope: D = %lld is above the kernel's limit of %d", (long long)p.D,
                              8 * kQkChunks * 1024));
  }
  const int threads = static_cast<int>(std::max<int64_t>(32, (per_thread + 31) / 32 * 32));
  dim3 grid(static_cast<unsigned>(p.rows), static_cast<unsigned>(p.count));
  qk_norm_rope_kernel<<<grid, threads, 0, as_stream(stream)>>>(p);
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status patchify_bf16(void* tokens, const float* x, int64_t C, int64_t F, int64_t H, int64_t W, int pt, int ph, int pw,
                     void* stream) {
  const int64_t n = C * F * H * W;
  patchify_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(static_cast<bf16*>(tokens), x, C, F, H, W, pt, ph, pw);
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status unpatchify_f32(float* out, const float* y, int64_t C, int64_t F, int64_t H, int64_t W, int pt, int ph, int pw,
                      void* stream) {
  const int64_t n = C * F * H * W;
  unpatchify_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(out, y, C, F, H, W, pt, ph, pw);
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status add_broadcast_f32(float* out, const float* a, const float* b, int64_t n, int64_t period, void* stream) {
  add_broadcast_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(out, a, b, n, period);
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status silu_f32(float* out, const float* x, int64_t n, void* stream) {
  silu_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(out, x, n);
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status bf16_to_f32(float* out, const void* x, int64_t n, void* stream) {
  bf16_to_f32_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(out, static_cast<const bf16*>(x), n);
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

Status fill_gaussian(void* dst, bool bf16_out, int64_t n, uint64_t seed, float scale, float offset, void* stream) {
  if (n <= 0) return Status::ok();
  fill_gaussian_kernel<<<grid_1d(n, 256), 256, 0, as_stream(stream)>>>(dst, bf16_out, n, seed, scale, offset);
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

}  // namespace vdit::ops::cuda
