// CUDA kernels and host side of draft_device.h. Per call, three launches and no host synchronization:
//   pool      region means of q/k (clipped edge regions), and clears the select scratch
//   map       softmax draft map per head (scores on FP64 tensor cores for HD 64/128), and the first
//             radix-select histogram (top 11 bits)
//   select    one cooperative launch, NH × S CTAs (S ≈ g² / 2048, as many as fit resident): two more radix
//             passes (11 + 10 bits, a grid barrier after each) give the per-head threshold; row counts (full /
//             part blocks), a grid barrier, then the CSR pointers (per-head totals + in-CTA scans), the
//             ballot-compacted lists and the launch order
// H200, 12 heads (Timing.DraftWanShapes): Wan 480p (336 regions, padded) plans in ~0.14 ms = 2.1 % of its
// 6.4 ms of attention (pool 75 µs: reads all of q and k; map 33 µs; select + lists 38 µs); the 12-launch
// planner before this one took 0.24 ms at 512x768 (7.4 %).
// Shapes: q/k [L, NH, HD] bf16|f16; pooled [2, g, NH, HD] f32; map [NH, g, g] f32.
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "attention/cuda/planners/draft_device.h"
#include "dit/core/check_cuda.h"

namespace cg = cooperative_groups;

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

// The select + lists launch (cooperative: every CTA resident, grid barriers between the phases).
struct SelectArgs {
  const float* map;               // [NH, g, g]
  int64_t g, nb;
  int NH, S;                      // heads; CTAs per head (blockIdx.x = h · S + s)
  int mode;                       // 0: radix select of the kx-th smallest; 1: threshold -inf; 2: +inf
  long long kx;
  uint32_t* hist;                 // [3, NH, 2048]: pass 1 filled by the map kernel, all zeroed by the pool kernel
  unsigned long long* tot;        // [NH, 2] listed full / part blocks per head (zeroed by the pool kernel)
  float* threshold;               // [NH]
  const uint8_t* block_pad;       // [nb]
  int2* counts;                   // [NH · nb]
  int64_t* full_ptr;              // [NH · nb + 1]
  int64_t* part_ptr;
  int32_t* full_idx;
  int32_t* part_idx;
  int32_t* items;                 // [NH · nb]
  long long* stamps;              // null, or [5] clock64() of CTA 0 at its phase boundaries (profile())
};

// Block-wide (kSelThreads threads, 8 bins each): the bin of `hist` (2048 bins) holding the rem-th entry
// (1-based) of those counted; rem becomes that entry's rank inside the bin. Every thread returns the bin.
// Reads with __ldcg: the histogram was filled by other CTAs of this launch.
__device__ unsigned int pick_bin(const uint32_t* hist, long long* rem, long long* sbuf) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  uint32_t c[8];
  long long s = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    c[i] = __ldcg(hist + tid * 8 + i);
    s += c[i];
  }
  long long incl = s;
  for (int o = 1; o < 32; o <<= 1) {
    const long long v = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += v;
  }
  if (lane == 31) sbuf[warp] = incl;
  __syncthreads();
  long long base = 0;
  for (int w = 0; w < warp; ++w) base += sbuf[w];
  long long excl = base + incl - s;
  const long long want = *rem;
  if (excl < want && want <= excl + s) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if (want <= excl + c[i]) {
        sbuf[kSelWarps] = tid * 8 + i;
        sbuf[kSelWarps + 1] = want - excl;
        break;
      }
      excl += c[i];
    }
  }
  __syncthreads();
  const unsigned int bin = static_cast<unsigned int>(sbuf[kSelWarps]);
  *rem = sbuf[kSelWarps + 1];
  __syncthreads();  // sbuf is reused by the next call
  return bin;
}

// One radix pass over this CTA's slice of head h's map entries: entries whose bits match `prefix` under
// `mask` counted by digit (u >> shift) & digit_mask, added into the head's global histogram `out`. Each thread
// has 8 loads in flight (a CTA's slice is about kSelEntriesPerCta entries: one round trip).
__device__ void radix_pass(const uint32_t* bits, int64_t begin, int64_t end, unsigned int mask, unsigned int prefix,
                           int shift, unsigned int digit_mask, uint32_t* sh, uint32_t* out) {
  const int tid = threadIdx.x;
  for (int b = tid; b < kSelBins; b += kSelThreads) sh[b] = 0u;
  __syncthreads();
  for (int64_t e0 = begin; e0 < end; e0 += 8 * kSelThreads) {
    uint32_t u[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int64_t e = e0 + tid + i * kSelThreads;
      u[i] = e < end ? __ldg(bits + e) : 0u;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int64_t e = e0 + tid + i * kSelThreads;
      if (e < end && (u[i] & mask) == prefix) atomicAdd(&sh[(u[i] >> shift) & digit_mask], 1u);
    }
  }
  __syncthreads();
  for (int b = tid; b < kSelBins; b += kSelThreads) {
    if (sh[b]) atomicAdd(&out[b], sh[b]);
  }
}

// One warp walks row qb of head h's block mask in chunks of 32 key blocks, 8 chunks (their map entries and
// pad flags) loaded before any is used; fn(kb0, full_ballot, part_ballot) per chunk. Text rows/columns and
// the diagonal are always kept.
template <class Fn>
__device__ __forceinline__ void walk_row(const float* map, const uint8_t* block_pad, int64_t g, int64_t nb, int h,
                                         int64_t qb, float thr, int lane, Fn&& fn) {
  const float* mrow = map + (static_cast<int64_t>(h) * g + min(qb, g - 1)) * g;
  for (int64_t c0 = 0; c0 < nb; c0 += 8 * 32) {
    float v[8];
    uint8_t pad[8];
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int64_t kb = c0 + u * 32 + lane;
      v[u] = qb < g && kb < g ? __ldg(mrow + kb) : 0.f;
      pad[u] = kb < nb ? __ldg(block_pad + kb) : 0;
    }
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int64_t kb0 = c0 + u * 32;
      if (kb0 >= nb) break;  // warp-uniform
      const int64_t kb = kb0 + lane;
      const bool on = kb < nb && (qb >= g || kb >= g || qb == kb || v[u] >= thr);
      fn(kb0, __ballot_sync(0xffffffffu, on && !pad[u]), __ballot_sync(0xffffffffu, on && pad[u]));
    }
  }
}

// Block-wide inclusive scan of one value per thread (kSelThreads); returns the inclusive prefix and sets
// *total. sbuf: ≥ kSelWarps + 1 entries.
__device__ long long block_scan(long long v, long long* total, long long* sbuf) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  long long incl = v;
  for (int o = 1; o < 32; o <<= 1) {
    const long long x = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += x;
  }
  if (lane == 31) sbuf[warp] = incl;
  __syncthreads();
  long long base = 0, all = 0;
  for (int w = 0; w < kSelWarps; ++w) {
    if (w < warp) base += sbuf[w];
    all += sbuf[w];
  }
  __syncthreads();
  *total = all;
  return base + incl;
}

__global__ void __launch_bounds__(kSelThreads, 4) select_lists_kernel(const SelectArgs a) {
  extern __shared__ __align__(16) uint32_t ssm[];  // radix histogram [2048], later the head's row totals [nb]
  __shared__ long long sbuf[kSelWarps + 2];
  __shared__ unsigned long long stot[2];
  cg::grid_group grid = cg::this_grid();
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int h = blockIdx.x / a.S, s = blockIdx.x % a.S;
  const int64_t g = a.g, nb = a.nb, n = g * g;
  auto stamp = [&](int i) {
    if (a.stamps && blockIdx.x == 0 && tid == 0) a.stamps[i] = clock64();
  };
  stamp(0);

  // Threshold: the kx-th smallest entry of the head's map (radix select on the f32 bit patterns; entries
  // are ≥ 0, so the bit order is the value order), 11 + 11 + 10 bits. Every CTA of the head picks the same
  // digits from the same global histograms.
  float thr = a.mode == 1 ? -INFINITY : INFINITY;
  if (a.mode == 0) {
    const uint32_t* bits = reinterpret_cast<const uint32_t*>(a.map + static_cast<int64_t>(h) * n);
    const int64_t chunk = (n + a.S - 1) / a.S, begin = min(n, s * chunk), end = min(n, begin + chunk);
    long long rem = a.kx;
    unsigned int prefix = pick_bin(a.hist + static_cast<int64_t>(h) * kSelBins, &rem, sbuf) << 21;
    uint32_t* h2 = a.hist + (static_cast<int64_t>(a.NH) + h) * kSelBins;
    radix_pass(bits, begin, end, 0xFFE00000u, prefix, 10, 0x7FFu, ssm, h2);
    grid.sync();
    stamp(1);
    prefix |= pick_bin(h2, &rem, sbuf) << 10;
    uint32_t* h3 = a.hist + (2 * static_cast<int64_t>(a.NH) + h) * kSelBins;
    radix_pass(bits, begin, end, 0xFFFFFC00u, prefix, 0, 0x3FFu, ssm, h3);
    grid.sync();
    stamp(2);
    prefix |= pick_bin(h3, &rem, sbuf);
    thr = __uint_as_float(prefix);
  }
  if (s == 0 && tid == 0) a.threshold[h] = thr;

  // Row counts of this CTA's rows (one warp per row): kept blocks without / with pad slots.
  const int64_t rpc = (nb + a.S - 1) / a.S, r0 = min(nb, s * rpc), r1 = min(nb, r0 + rpc);
  if (tid < 2) stot[tid] = 0;
  __syncthreads();
  for (int64_t qb = r0 + warp; qb < r1; qb += kSelWarps) {
    int f = 0, p = 0;
    walk_row(a.map, a.block_pad, g, nb, h, qb, thr, lane, [&](int64_t, unsigned int bf, unsigned int bp) {
      f += __popc(bf);
      p += __popc(bp);
    });
    if (lane == 0) {
      a.counts[static_cast<int64_t>(h) * nb + qb] = make_int2(f, p);
      atomicAdd(&stot[0], static_cast<unsigned long long>(f));
      atomicAdd(&stot[1], static_cast<unsigned long long>(p));
    }
  }
  __syncthreads();
  if (tid == 0) {
    atomicAdd(&a.tot[2 * h], stot[0]);
    atomicAdd(&a.tot[2 * h + 1], stot[1]);
  }
  grid.sync();
  stamp(3);

  // CSR pointers: entries of earlier heads, then of this head's rows before r0, then an in-CTA scan.
  long long base_f = 0, base_p = 0;
  if (warp == 0) {
    for (int hh = lane; hh < h; hh += 32) {
      base_f += static_cast<long long>(__ldcg(a.tot + 2 * hh));
      base_p += static_cast<long long>(__ldcg(a.tot + 2 * hh + 1));
    }
  } else {
    for (int64_t qb = tid - 32; qb < r0; qb += kSelThreads - 32) {
      const int2 c = __ldcg(a.counts + static_cast<int64_t>(h) * nb + qb);
      base_f += c.x;
      base_p += c.y;
    }
  }
  long long carry_f = 0, carry_p = 0;  // block totals: the pointers before this CTA's first row
  block_scan(base_f, &carry_f, sbuf);
  block_scan(base_p, &carry_p, sbuf);
  for (int64_t c0 = r0; c0 < r1; c0 += kSelThreads) {
    const int64_t qb = c0 + tid, row = static_cast<int64_t>(h) * nb + qb;
    const int2 c = qb < r1 ? __ldcg(a.counts + row) : make_int2(0, 0);
    long long sf = 0, sp = 0;
    const long long inc_f = block_scan(c.x, &sf, sbuf);
    const long long inc_p = block_scan(c.y, &sp, sbuf);
    if (qb < r1) {
      a.full_ptr[row + 1] = carry_f + inc_f;
      a.part_ptr[row + 1] = carry_p + inc_p;
    }
    carry_f += sf;
    carry_p += sp;
  }
  if (blockIdx.x == 0 && tid == 0) a.full_ptr[0] = a.part_ptr[0] = 0;
  // The head's row lengths for the launch order.
  int32_t* rowlen = reinterpret_cast<int32_t*>(ssm);
  for (int64_t qb = tid; qb < nb; qb += kSelThreads) {
    const int2 c = __ldcg(a.counts + static_cast<int64_t>(h) * nb + qb);
    rowlen[qb] = c.x + c.y;
  }
  __syncthreads();  // this CTA's pointers and rowlen are visible to the whole CTA

  // One warp per row: the sorted lists (ballot compaction) and the row's place in the launch order
  // (longest first, ties by query block: the host's block_sparse_work_order).
  for (int64_t qb = r0 + warp; qb < r1; qb += kSelWarps) {
    const int64_t row = static_cast<int64_t>(h) * nb + qb;
    const int2 c = __ldcg(a.counts + row);
    int64_t fb = a.full_ptr[row + 1] - c.x, pb = a.part_ptr[row + 1] - c.y;
    const unsigned int lt = (1u << lane) - 1u;
    walk_row(a.map, a.block_pad, g, nb, h, qb, thr, lane, [&](int64_t kb0, unsigned int bf, unsigned int bp) {
      const int32_t kb = static_cast<int32_t>(kb0 + lane);
      if ((bf >> lane) & 1u) a.full_idx[fb + __popc(bf & lt)] = kb;
      if ((bp >> lane) & 1u) a.part_idx[pb + __popc(bp & lt)] = kb;
      fb += __popc(bf);
      pb += __popc(bp);
    });
    const int32_t len = rowlen[qb];
    int rank = 0;
    for (int64_t o = lane; o < nb; o += 32) {
      const int32_t x = rowlen[o];
      rank += (x > len || (x == len && o < qb)) ? 1 : 0;
    }
    for (int o = 16; o > 0; o >>= 1) rank += __shfl_xor_sync(0xffffffffu, rank, o);
    if (lane == 0) a.items[static_cast<int64_t>(h) * nb + rank] = static_cast<int32_t>(row);
  }
  __syncthreads();
  stamp(4);
}

size_t select_smem_bytes(int64_t nb) {
  return std::max<size_t>(sizeof(uint32_t) * kSelBins, sizeof(int32_t) * static_cast<size_t>(nb));
}

template <class T>
Status upload(DeviceBuffer* buf, const std::vector<T>& v) {
  *buf = DeviceBuffer();
  VDIT_ASSIGN(*buf, DeviceBuffer::allocate(std::max<size_t>(16, v.size() * sizeof(T))));
  if (!v.empty()) VDIT_TRY(buf->copy_from_host(v.data(), v.size() * sizeof(T)));
  return Status::ok();
}

Status alloc(DeviceBuffer* buf, size_t bytes) {
  *buf = DeviceBuffer();
  VDIT_ASSIGN(*buf, DeviceBuffer::allocate(std::max<size_t>(16, bytes)));
  return Status::ok();
}

size_t scratch_hist_words(int NH) { return static_cast<size_t>(3) * NH * kSelBins; }
size_t scratch_bytes(int NH) {
  return sizeof(uint32_t) * scratch_hist_words(NH) + sizeof(unsigned long long) * 2 * static_cast<size_t>(NH);
}

}  // namespace

bool DraftDevicePlanner::prepared_for(const DraftGeometry& geo, int NH, int HD) const {
  return g_ > 0 && geo.F == F_ && geo.h == h_ && geo.w == w_ && geo.ph == ph_ && geo.pw == pw_ &&
         geo.block == block_ && geo.text_len == text_len_ && geo.video_begin == video_begin_ && geo.g == g_ &&
         NH == NH_ && HD == HD_;
}

Status DraftDevicePlanner::prepare(const DraftGeometry& geo, int NH, int HD) {
  if (prepared_for(geo, NH, HD)) return Status::ok();
  if (geo.g < 1 || geo.g > kMaxRegions) {
    return unsupported(strfmt("DraftAttention on the GPU: %lld regions (1 to %d)", static_cast<long long>(geo.g),
                              kMaxRegions));
  }
  if (HD > kMaxHeadDim || HD < 8 || HD % 8 != 0) {
    return unsupported(strfmt("DraftAttention on the GPU: head dim %d (multiples of 8 up to %d)", HD, kMaxHeadDim));
  }
  if (NH < 1) return invalid_argument("DraftAttention on the GPU: no heads");
  const int64_t Lp = static_cast<int64_t>(geo.slots.size()), B = geo.block;
  if (Lp < geo.L || Lp >= (int64_t{1} << 30)) {
    return unsupported(strfmt("DraftAttention on the GPU: %lld positions for %lld tokens", static_cast<long long>(Lp),
                              static_cast<long long>(geo.L)));
  }
  g_ = 0;  // not prepared until everything below succeeded
  const int64_t nb = (Lp + B - 1) / B, rows = static_cast<int64_t>(NH) * nb;
  std::vector<uint8_t> pad(static_cast<size_t>(nb), 0);
  std::vector<int32_t> real(static_cast<size_t>(nb), 0);
  for (int64_t n = 0; n < Lp; ++n) {
    if (geo.slots[static_cast<size_t>(n)] < 0) {
      pad[static_cast<size_t>(n / B)] = 1;
    } else {
      ++real[static_cast<size_t>(n / B)];
    }
  }
  int64_t padded = 0;
  for (uint8_t x : pad) padded += x;
  VDIT_TRY(upload(&slots_, geo.slots));
  VDIT_TRY(upload(&block_pad_, pad));
  VDIT_TRY(alloc(&pooled_, sizeof(float) * 2 * geo.g * NH * HD));
  VDIT_TRY(alloc(&map_, sizeof(float) * NH * geo.g * geo.g));
  VDIT_TRY(alloc(&threshold_, sizeof(float) * NH));
  VDIT_TRY(alloc(&scratch_, scratch_bytes(NH)));
  VDIT_TRY(alloc(&counts_, sizeof(int2) * rows));
  VDIT_TRY(alloc(&full_ptr_, sizeof(int64_t) * (rows + 1)));
  VDIT_TRY(alloc(&part_ptr_, sizeof(int64_t) * (rows + 1)));
  // Capacity: every block of every row (a row lists each key block at most once, in one of the lists).
  VDIT_TRY(alloc(&full_idx_, sizeof(int32_t) * rows * (nb - padded)));
  VDIT_TRY(alloc(&part_idx_, sizeof(int32_t) * rows * padded));
  VDIT_TRY(alloc(&items_, sizeof(int32_t) * rows));
  VDIT_TRY(alloc(&stamps_, sizeof(long long) * 8));
  // The cooperative launch needs all of its CTAs resident at once.
  int dev = 0, sms = 0, coop = 0, per_sm = 0;
  VDIT_CHECK(cudaGetDevice(&dev));
  VDIT_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  VDIT_CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev));
  if (!coop) return unsupported("DraftAttention on the GPU: the device does not support cooperative launches");
  const size_t smem = select_smem_bytes(nb);
  if (smem > 48 * 1024) {
    VDIT_CHECK(cudaFuncSetAttribute(select_lists_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smem)));
  }
  VDIT_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, select_lists_kernel, kSelThreads, smem));
  const int64_t resident = static_cast<int64_t>(per_sm) * sms;
  if (resident < NH) {
    return unsupported(strfmt("DraftAttention on the GPU: %d heads but only %lld planner CTAs fit on the device", NH,
                              static_cast<long long>(resident)));
  }
  const int64_t want = (geo.g * geo.g + kSelEntriesPerCta - 1) / kSelEntriesPerCta;
  select_ctas_ = static_cast<int>(std::clamp<int64_t>(want, 1, resident / NH));
  block_real_ = std::move(real);
  Hp_ = geo.Hp, Wp_ = geo.Wp, ph_ = geo.ph, pw_ = geo.pw;
  F_ = geo.F, h_ = geo.h, w_ = geo.w, block_ = geo.block, text_len_ = geo.text_len, video_begin_ = geo.video_begin;
  L_ = geo.L, Lp_ = Lp, nb_ = nb, NH_ = NH, HD_ = HD, aligned_ = padded == 0;
  g_ = geo.g;
  return Status::ok();
}

Status DraftDevicePlanner::plan(const DeviceQKV& qkv, double sparsity) { return plan_impl(qkv, sparsity, nullptr); }

Status DraftDevicePlanner::plan_impl(const DeviceQKV& qkv, double sparsity, void* const* events) {
  if (g_ <= 0) return invalid_argument("DraftAttention GPU planner: prepare() was not called");
  if (qkv.L != L_ || qkv.NH != NH_ || qkv.HD != HD_) {
    return invalid_argument(strfmt("DraftAttention GPU planner: prepared for L=%lld NH=%d HD=%d, called with L=%lld "
                                   "NH=%d HD=%d",
                                   static_cast<long long>(L_), NH_, HD_, static_cast<long long>(qkv.L), qkv.NH,
                                   qkv.HD));
  }
  auto stream = static_cast<cudaStream_t>(qkv.stream);
  // Stage boundaries for profile(): events[0..3] around pool | map | select + lists.
  auto mark = [&](int i) {
    if (events) cudaEventRecord(static_cast<cudaEvent_t>(events[i]), stream);
  };
  const int64_t n = g_ * g_, kx = draft_excluded_count(sparsity, n);
  const int mode = kx <= 0 ? 1 : kx >= n ? 2 : 0;  // 1: keep everything (-inf), 2: only the forced blocks (+inf)
  auto* hist = scratch_.as<uint32_t>();
  auto* tot = reinterpret_cast<unsigned long long*>(hist + scratch_hist_words(NH_));
  mark(0);
  float* pooled = pooled_.as<float>();
  const PoolGeometry pg{Hp_, Wp_, h_, w_, video_begin_, ph_, pw_};
  const int64_t ld = static_cast<int64_t>(NH_) * HD_;
  const dim3 pool_grid(static_cast<unsigned>(g_),
                       static_cast<unsigned>((ld / 8 + kPoolChannelGroups - 1) / kPoolChannelGroups));
  const int64_t words = static_cast<int64_t>(scratch_bytes(NH_) / sizeof(uint32_t));
  if (qkv.dtype == DeviceDType::bf16) {
    pool_kernel<<<pool_grid, kPoolChannelGroups * kPoolRowGroups, 0, stream>>>(
        pooled, static_cast<const __nv_bfloat16*>(qkv.q),
                                               static_cast<const __nv_bfloat16*>(qkv.k), pg, g_, ld, hist, words);
  } else {
    pool_kernel<<<pool_grid, kPoolChannelGroups * kPoolRowGroups, 0, stream>>>(
        pooled, static_cast<const __half*>(qkv.q),
                                               static_cast<const __half*>(qkv.k), pg, g_, ld, hist, words);
  }
  VDIT_CHECK_LAUNCH();
  mark(1);
  VDIT_TRY(launch_map_any(map_.as<float>(), mode == 0 ? hist : nullptr, pooled, g_, NH_, HD_, stream));
  mark(2);
  SelectArgs a{};
  a.map = map_.as<float>();
  a.g = g_;
  a.nb = nb_;
  a.NH = NH_;
  a.S = select_ctas_;
  a.mode = mode;
  a.kx = kx;
  a.hist = hist;
  a.tot = tot;
  a.threshold = threshold_.as<float>();
  a.block_pad = block_pad_.as<uint8_t>();
  a.counts = counts_.as<int2>();
  a.full_ptr = full_ptr_.as<int64_t>();
  a.part_ptr = part_ptr_.as<int64_t>();
  a.full_idx = full_idx_.as<int32_t>();
  a.part_idx = part_idx_.as<int32_t>();
  a.items = items_.as<int32_t>();
  a.stamps = events ? stamps_.as<long long>() : nullptr;
  void* args[] = {&a};
  VDIT_CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(select_lists_kernel),
                                         dim3(static_cast<unsigned>(NH_ * select_ctas_)), dim3(kSelThreads), args,
                                         select_smem_bytes(nb_), stream));
  VDIT_CHECK_LAUNCH();
  mark(3);
  return Status::ok();
}

DeviceGatheredView DraftDevicePlanner::view() const {
  DeviceGatheredView v;
  v.block = block_;
  v.positions = Lp_;
  v.slots = slots_.as<int32_t>();
  v.head_shared = false;
  v.full_ptr = full_ptr_.as<int64_t>();
  v.full_idx = full_idx_.as<int32_t>();
  v.part_ptr = part_ptr_.as<int64_t>();
  v.part_idx = part_idx_.as<int32_t>();
  v.items = items_.as<int32_t>();
  return v;
}

Result<std::vector<std::pair<std::string, double>>> DraftDevicePlanner::profile(const DeviceQKV& qkv, double sparsity,
                                                                                 int reps) {
  constexpr int kEvents = 4;
  cudaEvent_t ev[kEvents];
  for (auto& e : ev) VDIT_CHECK(cudaEventCreate(&e));
  auto destroy = [&] {
    for (auto& e : ev) cudaEventDestroy(e);
  };
  std::vector<double> ms(kEvents - 1, 0.0), cycles(4, 0.0);
  int dev = 0, khz = 0;
  VDIT_CHECK(cudaGetDevice(&dev));
  VDIT_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev));
  for (int r = 0; r < reps; ++r) {
    void* raw[kEvents] = {ev[0], ev[1], ev[2], ev[3]};
    const Status st = plan_impl(qkv, sparsity, raw);
    if (!st.is_ok()) {
      destroy();
      return st;
    }
    if (cudaEventSynchronize(ev[kEvents - 1]) != cudaSuccess) {
      destroy();
      return internal_error("DraftAttention GPU planner: profiling failed");
    }
    for (int i = 0; i + 1 < kEvents; ++i) {
      float t = 0;
      cudaEventElapsedTime(&t, ev[i], ev[i + 1]);
      ms[static_cast<size_t>(i)] += t / reps;
    }
    long long stamp[5] = {};
    if (stamps_.copy_to_host(stamp, sizeof(stamp)).is_ok()) {
      for (int i = 0; i < 4; ++i) {
        cycles[static_cast<size_t>(i)] += static_cast<double>(stamp[i + 1] - stamp[i]) / reps;
      }
    }
  }
  destroy();
  // Inside the select + lists launch, from CTA 0's clock (SM cycles at the nominal clock rate; approximate).
  const double to_ms = khz > 0 ? 1.0 / khz : 0.0;
  return std::vector<std::pair<std::string, double>>{
      {"pool", ms[0]},
      {"map+hist", ms[1]},
      {"select+lists", ms[2]},
      {"[select pass 2 + sync]", cycles[0] * to_ms},
      {"[pass 3 + sync]", cycles[1] * to_ms},
      {"[counts + sync]", cycles[2] * to_ms},
      {"[scan + fill + order]", cycles[3] * to_ms}};
}

Status DraftDevicePlanner::download(std::vector<float>* map, std::vector<float>* threshold, Lists* lists,
                                    void* stream) const {
  VDIT_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  const int64_t rows = static_cast<int64_t>(NH_) * nb_;
  if (map) {
    map->resize(static_cast<size_t>(NH_ * g_ * g_));
    VDIT_TRY(map_.copy_to_host(map->data(), map->size() * sizeof(float)));
  }
  if (threshold) {
    threshold->resize(static_cast<size_t>(NH_));
    VDIT_TRY(threshold_.copy_to_host(threshold->data(), threshold->size() * sizeof(float)));
  }
  if (lists) {
    lists->full_ptr.resize(static_cast<size_t>(rows + 1));
    lists->part_ptr.resize(static_cast<size_t>(rows + 1));
    VDIT_TRY(full_ptr_.copy_to_host(lists->full_ptr.data(), lists->full_ptr.size() * sizeof(int64_t)));
    VDIT_TRY(part_ptr_.copy_to_host(lists->part_ptr.data(), lists->part_ptr.size() * sizeof(int64_t)));
    lists->full_idx.resize(static_cast<size_t>(lists->full_ptr.back()));
    lists->part_idx.resize(static_cast<size_t>(lists->part_ptr.back()));
    if (!lists->full_idx.empty()) {
      VDIT_TRY(full_idx_.copy_to_host(lists->full_idx.data(), lists->full_idx.size() * sizeof(int32_t)));
    }
    if (!lists->part_idx.empty()) {
      VDIT_TRY(part_idx_.copy_to_host(lists->part_idx.data(), lists->part_idx.size() * sizeof(int32_t)));
    }
    lists->items.resize(static_cast<size_t>(rows));
    VDIT_TRY(items_.copy_to_host(lists->items.data(), lists->items.size() * sizeof(int32_t)));
  }
  return Status::ok();
}

Result<double> DraftDevicePlanner::block_density(void* stream) const {
  VDIT_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  const int64_t rows = static_cast<int64_t>(NH_) * nb_;
  int64_t f = 0, p = 0;
  VDIT_CHECK(cudaMemcpy(&f, full_ptr_.as<int64_t>() + rows, sizeof(int64_t), cudaMemcpyDeviceToHost));
  VDIT_CHECK(cudaMemcpy(&p, part_ptr_.as<int64_t>() + rows, sizeof(int64_t), cudaMemcpyDeviceToHost));
  return static_cast<double>(f + p) / (static_cast<double>(rows) * static_cast<double>(nb_));
}

Result<double> DraftDevicePlanner::density(void* stream) const {
  if (aligned_) return block_density(stream);
  Lists l;
  VDIT_TRY(download(nullptr, nullptr, &l, stream));
  double pairs = 0;
  for (int64_t r = 0; r < static_cast<int64_t>(NH_) * nb_; ++r) {
    const double rq = block_real_[static_cast<size_t>(r % nb_)];
    for (int pass = 0; pass < 2; ++pass) {
      const auto& ptr = pass == 0 ? l.full_ptr : l.part_ptr;
      const auto& idx = pass == 0 ? l.full_idx : l.part_idx;
      for (int64_t e = ptr[static_cast<size_t>(r)]; e < ptr[static_cast<size_t>(r + 1)]; ++e) {
        pairs += rq * block_real_[static_cast<size_t>(idx[static_cast<size_t>(e)])];
      }
    }
  }
  return pairs / (static_cast<double>(NH_) * static_cast<double>(L_) * static_cast<double>(L_));
}

}  // namespace vdit::attn
