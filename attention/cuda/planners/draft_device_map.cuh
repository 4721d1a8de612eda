// Internal to draft_device.cu (included once, inside its translation unit): the planner's limits and its first
// two launches — `pool` (region means of q/k, clears the select scratch) and `map` (the softmax draft map per
// head, scores on FP64 tensor cores for HD 64/128, and the first radix-select histogram) — with their launchers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "dit/core/check_cuda.h"
#include "dit/core/status.h"

namespace vdit::attn {
namespace {

constexpr int kMaxRegions = 5120;
constexpr int kMaxHeadDim = 256;
constexpr int kSelBins = 2048;
constexpr int kSelThreads = 256;
constexpr int kSelWarps = kSelThreads / 32;
constexpr int64_t kSelEntriesPerCta = 2048;  // map entries per CTA and radix pass (S = ⌈g² / this⌉, capped)
constexpr size_t kMapSmemLimit = 160 * 1024;

__device__ __forceinline__ float load16(const __nv_bfloat16* p, int i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ float load16(const __half* p, int i) { return __half2float(p[i]); }

// Region geometry for the pool kernel: region r = (frame, pooled row, pooled col); edge regions are clipped
// to the grid (ceil-mode pooling over the tokens they have).
struct PoolGeometry {
  int64_t Hp, Wp, h, w, video_begin;
  int ph, pw;
};

// grid (g, ⌈NH·HD/8 / 64⌉), 256 threads = 64 groups of 8 consecutive channels (16-byte loads) × 4 row groups
// (region rows y ≡ rg mod 4, four tokens in flight per thread): region means of q and k in double. Sums of
// ≤ 128 bf16/f16 values are exact in double whatever the order (their bits span < 53), so the f32 means are
// bit-identical to the host planner's row-major sums. pooled: [2, g, NH·HD] (q̃ then k̃). Also zeroes the
// select scratch of this plan. (Adding tokens in f32 pairs with a TwoSum error term, to halve the f64
// conversions, measured slower on the H200: the kernel is not bound by its FP64 work.)
constexpr int kPoolChannelGroups = 64;
constexpr int kPoolRowGroups = 4;

template <class T>
__global__ void __launch_bounds__(kPoolChannelGroups * kPoolRowGroups)
    pool_kernel(float* pooled, const T* q, const T* k, PoolGeometry pg, int64_t g, int64_t ld, uint32_t* scratch,
                int64_t scratch_words) {
  __shared__ double part[kPoolRowGroups - 1][kPoolChannelGroups][17];  // row groups 1..3: 8 q + 8 k sums (+pad)
  {
    const int64_t threads = static_cast<int64_t>(gridDim.x) * gridDim.y * blockDim.x;
    const int64_t id = (static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x) * blockDim.x + threadIdx.x;
    for (int64_t i = id; i < scratch_words; i += threads) scratch[i] = 0u;
  }
  const int cg = threadIdx.x % kPoolChannelGroups, rg = threadIdx.x / kPoolChannelGroups;
  const int64_t r = blockIdx.x;
  const int64_t c8 = (static_cast<int64_t>(blockIdx.y) * kPoolChannelGroups + cg) * 8;  // first channel
  const bool active = c8 < ld;
  const int64_t f = r / (pg.Hp * pg.Wp), a = r / pg.Wp % pg.Hp, b = r % pg.Wp;
  const int ys = static_cast<int>(min(static_cast<int64_t>(pg.ph), pg.h - a * pg.ph));
  const int xs = static_cast<int>(min(static_cast<int64_t>(pg.pw), pg.w - b * pg.pw));
  double sq[8], sk[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) sq[i] = sk[i] = 0;
  auto add = [&](const uint4& qv, const uint4& kv) {
    const T* qe = reinterpret_cast<const T*>(&qv);
    const T* ke = reinterpret_cast<const T*>(&kv);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      sq[i] += load16(qe, i);
      sk[i] += load16(ke, i);
    }
  };
  if (active) {
    for (int y = rg; y < ys; y += kPoolRowGroups) {
      const int64_t t0 = pg.video_begin + (f * pg.h + a * pg.ph + y) * pg.w + b * pg.pw;
      int x = 0;
      for (; x + 4 <= xs; x += 4) {
        uint4 qv[4], kv[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const int64_t e = (t0 + x + u) * ld + c8;
          qv[u] = __ldg(reinterpret_cast<const uint4*>(q + e));
          kv[u] = __ldg(reinterpret_cast<const uint4*>(k + e));
        }
#pragma unroll
        for (int u = 0; u < 4; ++u) add(qv[u], kv[u]);
      }
      for (; x < xs; ++x) {
        const int64_t e = (t0 + x) * ld + c8;
        add(__ldg(reinterpret_cast<const uint4*>(q + e)), __ldg(reinterpret_cast<const uint4*>(k + e)));
      }
    }
  }
  if (rg > 0) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      part[rg - 1][cg][i] = sq[i];
      part[rg - 1][cg][8 + i] = sk[i];
    }
  }
  __syncthreads();
  if (rg != 0 || !active) return;
#pragma unroll
  for (int j = 0; j < kPoolRowGroups - 1; ++j) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      sq[i] += part[j][cg][i];
      sk[i] += part[j][cg][8 + i];
    }
  }
  const double n = static_cast<double>(ys * xs);
  float4* pq = reinterpret_cast<float4*>(pooled + r * ld + c8);
  float4* pk = reinterpret_cast<float4*>(pooled + (g + r) * ld + c8);
  pq[0] = make_float4(static_cast<float>(sq[0] / n), static_cast<float>(sq[1] / n), static_cast<float>(sq[2] / n),
                      static_cast<float>(sq[3] / n));
  pq[1] = make_float4(static_cast<float>(sq[4] / n), static_cast<float>(sq[5] / n), static_cast<float>(sq[6] / n),
                      static_cast<float>(sq[7] / n));
  pk[0] = make_float4(static_cast<float>(sk[0] / n), static_cast<float>(sk[1] / n), static_cast<float>(sk[2] / n),
                      static_cast<float>(sk[3] / n));
  pk[1] = make_float4(static_cast<float>(sk[4] / n), static_cast<float>(sk[5] / n), static_cast<float>(sk[6] / n),
                      static_cast<float>(sk[7] / n));
}

// The softmax tail of both map kernels: rows [0, rows) of srow ([rows, g] scaled scores in double, shared)
// become the head's map rows i0 … (one warp per row: max, exp, the row sum as a warp tree in double, the
// division rounded to f32 — the host's arithmetic up to the order of the sum). With `hist`, the f32 entries
// also go into the CTA's histogram `sh` of the top 11 bits, then into the head's global first-pass histogram.
__device__ void softmax_rows(float* map, uint32_t* hist, double* srow, uint32_t* sh, int64_t g, int h, int64_t i0,
                             int rows) {
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, warps = blockDim.x >> 5;
  for (int r = warp; r < rows; r += warps) {
    double* s = srow + static_cast<int64_t>(r) * g;
    double mx = -INFINITY;
    for (int64_t j = lane; j < g; j += 32) mx = fmax(mx, s[j]);
    for (int o = 16; o > 0; o >>= 1) mx = fmax(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    double sum = 0;
    for (int64_t j = lane; j < g; j += 32) {
      const double e = exp(s[j] - mx);
      s[j] = e;
      sum += e;
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    float* out = map + (static_cast<int64_t>(h) * g + i0 + r) * g;
    for (int64_t j = lane; j < g; j += 32) {
      const float v = static_cast<float>(s[j] / sum);
      out[j] = v;
      if (hist) atomicAdd(&sh[__float_as_uint(v) >> 21], 1u);
    }
  }
  if (hist) {
    __syncthreads();
    uint32_t* hh = hist + static_cast<int64_t>(h) * kSelBins;
    for (int b = tid; b < kSelBins; b += blockDim.x) {
      if (sh[b]) atomicAdd(&hh[b], sh[b]);
    }
  }
}

// The scores with FP64 tensor-core MMAs (mma.sync m8n8k4 f64, sm_80+): grid (⌈g / R⌉, NH), 256 threads;
// R rows of head h per CTA (R / 8 m-tiles of q̃, staged as doubles in shared memory, rows padded by 4
// doubles against bank conflicts), each warp NT key tiles of 8 at a time (k̃ read from global as f32, each
// value converted once per CTA), HD / 4 k-steps. The dot products are exact products accumulated in double
// (the order inside a k-step is the tensor core's). Dynamic shared memory: qd [R, HD + 4], srow [R, g]
// double, hist [2048] u32.
constexpr int kMapMmaThreads = 256;
constexpr int kMapMmaTiles = 2;  // key tiles of 8 per warp and pass

__device__ __forceinline__ void dmma_m8n8k4(double (&c)[2], double a, double b) {
  asm volatile("mma.sync.aligned.m8n8k4.row.col.f64.f64.f64.f64 {%0, %1}, {%2}, {%3}, {%0, %1};\n"
               : "+d"(c[0]), "+d"(c[1])
               : "d"(a), "d"(b));
}

template <int R, int HD>
__global__ void __launch_bounds__(kMapMmaThreads) map_mma_kernel(float* map, uint32_t* hist, const float* pooled,
                                                                 int64_t g, int NH, double inv_sqrt_d) {
  constexpr int kM = R / 8, kQs = HD + 4, NT = kMapMmaTiles;
  extern __shared__ __align__(16) double msm[];
  double* qd = msm;
  double* srow = qd + R * kQs;
  uint32_t* sh = reinterpret_cast<uint32_t*>(srow + R * g);
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * R;
  const int h = blockIdx.y;
  const int rows = static_cast<int>(min(static_cast<int64_t>(R), g - i0));
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gr = lane >> 2, tc = lane & 3;
  for (int e = tid; e < R * HD; e += kMapMmaThreads) {
    const int r = e / HD, d = e % HD;
    qd[r * kQs + d] = r < rows ? static_cast<double>(pooled[(i0 + r) * ld + static_cast<int64_t>(h) * HD + d]) : 0.0;
  }
  if (hist) {
    for (int b = tid; b < kSelBins; b += kMapMmaThreads) sh[b] = 0u;
  }
  __syncthreads();
  const float* kp = pooled + g * ld + static_cast<int64_t>(h) * HD;
  const int64_t tiles = (g + 7) / 8;
  constexpr int kWarps = kMapMmaThreads / 32;
  for (int64_t t0 = warp; t0 < tiles; t0 += kWarps * NT) {
    double acc[NT][kM][2];
    const float* kr[NT];
    bool kv[NT];
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const int64_t j = (t0 + t * kWarps) * 8 + gr;  // this lane's key of tile t (B operand column)
      kv[t] = j < g;
      kr[t] = kp + (kv[t] ? j : 0) * ld + tc;
#pragma unroll
      for (int m = 0; m < kM; ++m) acc[t][m][0] = acc[t][m][1] = 0.0;
    }
#pragma unroll 8
    for (int k0 = 0; k0 < HD; k0 += 4) {
      double a[kM], b[NT];
#pragma unroll
      for (int t = 0; t < NT; ++t) b[t] = kv[t] ? static_cast<double>(__ldg(kr[t] + k0)) : 0.0;
#pragma unroll
      for (int m = 0; m < kM; ++m) a[m] = qd[(m * 8 + gr) * kQs + k0 + tc];
#pragma unroll
      for (int t = 0; t < NT; ++t)
#pragma unroll
        for (int m = 0; m < kM; ++m) dmma_m8n8k4(acc[t][m], a[m], b[t]);
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) {
#pragma unroll
      for (int m = 0; m < kM; ++m) {
        const int r = m * 8 + gr;
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int64_t j = (t0 + t * kWarps) * 8 + 2 * tc + e;
          if (r < rows && j < g) srow[r * g + j] = acc[t][m][e] * inv_sqrt_d;
        }
      }
    }
  }
  __syncthreads();
  softmax_rows(map, hist, srow, sh, g, h, i0, rows);
}

// The generic map kernel (any head dim that is a multiple of 4, any g up to kMaxRegions): grid (⌈g / R⌉,
// NH), T ≤ 512 threads (⌈g / rounds⌉ rounded up to a multiple of 32); thread j computes the R dots of key j
// in double (fused multiply-adds, d ascending), q̃ rows staged as doubles in shared memory.
// Dynamic shared memory: qd [R, HD] double, srow [R, g] double, hist [2048] u32.
constexpr int kMapMaxThreads = 512;

template <int R>
__global__ void __launch_bounds__(kMapMaxThreads) map_kernel(float* map, uint32_t* hist, const float* pooled, int64_t g,
                                                             int NH, int HD, double inv_sqrt_d) {
  extern __shared__ __align__(16) double msm[];
  double* qd = msm;
  double* srow = qd + R * HD;
  uint32_t* sh = reinterpret_cast<uint32_t*>(srow + R * g);
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * R;
  const int h = blockIdx.y;
  const int rows = static_cast<int>(min(static_cast<int64_t>(R), g - i0));
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  const int tid = threadIdx.x, T = blockDim.x;
  for (int e = tid; e < R * HD; e += T) {
    const int r = e / HD, d = e % HD;
    qd[e] = r < rows ? static_cast<double>(pooled[(i0 + r) * ld + static_cast<int64_t>(h) * HD + d]) : 0.0;
  }
  if (hist) {
    for (int b = tid; b < kSelBins; b += T) sh[b] = 0u;
  }
  __syncthreads();
  const float* kp = pooled + g * ld + static_cast<int64_t>(h) * HD;
  for (int64_t j = tid; j < g; j += T) {
    const float4* kj = reinterpret_cast<const float4*>(kp + j * ld);
    double acc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] = 0;
#pragma unroll 4
    for (int d4 = 0; d4 < HD / 4; ++d4) {
      const float4 kv = __ldg(kj + d4);
      const double k0 = kv.x, k1 = kv.y, k2 = kv.z, k3 = kv.w;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const double2 qa = *reinterpret_cast<const double2*>(qd + r * HD + 4 * d4);
        const double2 qb = *reinterpret_cast<const double2*>(qd + r * HD + 4 * d4 + 2);
        double a = acc[r];
        a = fma(qa.x, k0, a);
        a = fma(qa.y, k1, a);
        a = fma(qb.x, k2, a);
        a = fma(qb.y, k3, a);
        acc[r] = a;
      }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (r < rows) srow[r * g + j] = acc[r] * inv_sqrt_d;
    }
  }
  __syncthreads();
  softmax_rows(map, hist, srow, sh, g, h, i0, rows);
}

size_t map_smem_bytes(int R, int64_t g, int HD) {
  return sizeof(double) * static_cast<size_t>(R) * (static_cast<size_t>(HD) + static_cast<size_t>(g)) +
         sizeof(uint32_t) * kSelBins;
}
size_t map_mma_smem_bytes(int R, int64_t g, int HD) {
  return sizeof(double) * static_cast<size_t>(R) * (static_cast<size_t>(HD) + 4 + static_cast<size_t>(g)) +
         sizeof(uint32_t) * kSelBins;
}

template <int R>
Status launch_map(float* map, uint32_t* hist, const float* pooled, int64_t g, int NH, int HD, cudaStream_t stream) {
  const size_t smem = map_smem_bytes(R, g, HD);
  auto kernel = map_kernel<R>;
  VDIT_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const int64_t rounds = (g + kMapMaxThreads - 1) / kMapMaxThreads;
  const int threads = static_cast<int>(std::max<int64_t>(64, ((g + rounds - 1) / rounds + 31) / 32 * 32));
  const dim3 grid(static_cast<unsigned>((g + R - 1) / R), static_cast<unsigned>(NH));
  kernel<<<grid, threads, smem, stream>>>(map, hist, pooled, g, NH, HD, 1.0 / std::sqrt(static_cast<double>(HD)));
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

template <int R, int HD>
Status launch_map_mma(float* map, uint32_t* hist, const float* pooled, int64_t g, int NH, cudaStream_t stream) {
  const size_t smem = map_mma_smem_bytes(R, g, HD);
  auto kernel = map_mma_kernel<R, HD>;
  VDIT_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>((g + R - 1) / R), static_cast<unsigned>(NH));
  kernel<<<grid, kMapMmaThreads, smem, stream>>>(map, hist, pooled, g, NH, 1.0 / std::sqrt(static_cast<double>(HD)));
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

// Rows of the generic map kernel per CTA: up to 16, as many as fit the scores in kMapSmemLimit.
int map_rows(int64_t g, int HD) {
  for (int R : {16, 8, 4, 2}) {
    if (map_smem_bytes(R, g, HD) <= kMapSmemLimit) return R;
  }
  return 1;
}

// The tensor-core kernel for HD 64 / 128 (16 rows per CTA, 8 for larger g), the generic one otherwise.
Status launch_map_any(float* map, uint32_t* hist, const float* pooled, int64_t g, int NH, int HD,
                      cudaStream_t stream) {
  if (HD == 128 || HD == 64) {
    for (int R : {16, 8}) {
      if (map_mma_smem_bytes(R, g, HD) > kMapSmemLimit) continue;
      if (HD == 128) {
        return R == 16 ? launch_map_mma<16, 128>(map, hist, pooled, g, NH, stream)
                       : launch_map_mma<8, 128>(map, hist, pooled, g, NH, stream);
      }
      return R == 16 ? launch_map_mma<16, 64>(map, hist, pooled, g, NH, stream)
                     : launch_map_mma<8, 64>(map, hist, pooled, g, NH, stream);
    }
  }
  switch (map_rows(g, HD)) {
    case 16: return launch_map<16>(map, hist, pooled, g, NH, HD, stream);
    case 8: return launch_map<8>(map, hist, pooled, g, NH, HD, stream);
    case 4: return launch_map<4>(map, hist, pooled, g, NH, HD, stream);
    case 2: return launch_map<2>(map, hist, pooled, g, NH, HD, stream);
    default: return launch_map<1>(map, hist, pooled, g, NH, HD, stream);
  }
}

}  // namespace
}  // namespace vdit::attn
