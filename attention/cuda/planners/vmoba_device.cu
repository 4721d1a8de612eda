// CUDA kernels and host side of vmoba_device.h. Per call: zero the kept counter, key partial sums, key means
// (+ their 16-bit parts), gates + top-k + q-block OR/AND masks, list counts, launch order, CSR scan, CSR fill:
// one memset and 7 launches, no host synchronization.
// Shapes: q/k [L, NH, HD] bf16|f16 (original order); positions n are the partition's rearranged order.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "attention/cuda/block_sparse_common.cuh"  // cuda_bs::Mma: the m16n8k16 MMA wrappers
#include "attention/cuda/planners/vmoba_device.h"
#include "dit/core/check_cuda.h"

namespace vdit::attn {
namespace {

constexpr int kSlab = 128;         // rearranged keys per partial-sum work item (one chunk each)
constexpr int kGateMaxThreads = 512;  // gate CTA: one thread per query position, each warp 32 rows (two m16 tiles)
constexpr int kGateMaxSmem = 227 * 1024 - 6 * 1024;  // dynamic shared memory of a gate CTA (static part aside)
constexpr int kMaxWords = 4;       // select words per row (128 chunks)
constexpr int kParts = 3;          // 16-bit parts of an f32 mean: 3 × 8 significand bits (bf16) cover f32's 24
constexpr int kOrderPad = 4;       // padding of the order kernel's shared counts (see draft_device.cu)
constexpr int64_t kMaxOrderBlocks = 12000;  // order kernel: shared counts under 48 KB; beyond: identity order

// Selection mode of a launch (uniform: it depends only on the chunk count and k).
enum GateMode : int { kSelfOnly = 0, kAllChunks = 1, kTopList = 2, kBottomList = 3 };

template <class T>
struct Io;

template <>
struct Io<__nv_bfloat16> {
  static __device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
  static __device__ __forceinline__ __nv_bfloat16 from_float(float x) { return __float2bfloat16_rn(x); }
};

template <>
struct Io<__half> {
  static __device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
  static __device__ __forceinline__ __half from_float(float x) { return __float2half_rn(x); }
};

// grid (slabs, ⌈ld/8 / blockDim.x⌉), block (≤ 256, 2): partial[s, e..e+7] = Σ over the slab's positions n of
// k[perm[n], e..e+7] in double: 8 consecutive channels per thread (16-byte loads), the slab's rows split
// between threadIdx.y = 0 / 1 (even / odd rows, 8 loads in flight each; the slab's perm staged in shared
// memory so the loads do not wait for it), then summed. Sums of 16-bit values in double are exact here, so
// the order (rows, slabs) does not change the means.
template <class T>
__global__ void key_sum_kernel(double* partial, const T* k, const int32_t* perm, const int2* slab_range, int64_t ld) {
  __shared__ int32_t s_perm[kSlab];
  __shared__ double s_odd[8][256];
  const int2 r = slab_range[blockIdx.x];
  const int rows = r.y - r.x;
  for (int i = threadIdx.y * blockDim.x + threadIdx.x; i < rows; i += blockDim.x * blockDim.y) {
    s_perm[i] = perm[r.x + i];
  }
  __syncthreads();
  const int64_t e = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * 8;
  const bool active = e < ld;
  double acc[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) acc[i] = 0;
  if (active) {
    int i = threadIdx.y;
    for (; i + 14 < rows; i += 16) {
      uint4 v[8];
#pragma unroll
      for (int u = 0; u < 8; ++u) v[u] = __ldg(reinterpret_cast<const uint4*>(k + s_perm[i + 2 * u] * ld + e));
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        const T* x = reinterpret_cast<const T*>(&v[u]);
#pragma unroll
        for (int c = 0; c < 8; ++c) acc[c] += Io<T>::to_float(x[c]);
      }
    }
    for (; i < rows; i += 2) {
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(k + s_perm[i] * ld + e));
      const T* x = reinterpret_cast<const T*>(&v);
#pragma unroll
      for (int c = 0; c < 8; ++c) acc[c] += Io<T>::to_float(x[c]);
    }
  }
  if (threadIdx.y == 1) {
#pragma unroll
    for (int c = 0; c < 8; ++c) s_odd[c][threadIdx.x] = acc[c];
  }
  __syncthreads();
  if (threadIdx.y == 0 && active) {
    double* dst = partial + static_cast<int64_t>(blockIdx.x) * ld + e;
#pragma unroll
    for (int c = 0; c < 8; ++c) dst[c] = acc[c] + s_odd[c][threadIdx.x];
  }
}

// grid (Cpad, ⌈ld / 256⌉), 256 threads: key_mean[c, e] = (Σ of chunk c's slabs) / length, rounded to f32 as
// the host does, and its parts split[p, h, c, d] (hi, mid, lo; hi + mid + lo = the f32 mean) for the gate
// MMAs. Rows c ≥ C of the split (n-tile padding) are zero.
template <class T>
__global__ void key_mean_kernel(float* key_mean, T* split, const double* partial, const int32_t* slab_begin,
                                const int32_t* chunk_len, int64_t ld, int NH, int HD, int C, int Cpad) {
  const int c = blockIdx.x;
  const int64_t e = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (e >= ld) return;
  float m = 0.f;
  if (c < C) {
    double sum = 0;
    for (int s = slab_begin[c]; s < slab_begin[c + 1]; ++s) sum += partial[static_cast<int64_t>(s) * ld + e];
    m = static_cast<float>(sum / static_cast<double>(chunk_len[c]));
    key_mean[c * ld + e] = m;
  }
  const T hi = Io<T>::from_float(m);
  const float r1 = m - Io<T>::to_float(hi);
  const T mid = Io<T>::from_float(r1);
  const T lo = Io<T>::from_float(r1 - Io<T>::to_float(mid));
  const int64_t plane = static_cast<int64_t>(NH) * Cpad * HD;
  const int64_t h = e / HD, d = e % HD;
  const int64_t o = (h * Cpad + c) * HD + d;
  split[o] = hi;
  split[plane + o] = mid;
  split[2 * plane + o] = lo;
}

struct GateParams {
  const void* q;              // [L, NH, HD]
  const void* split;          // [3, NH, Cpad, HD]
  const int32_t* perm;        // [L]
  const int32_t* chunk_of;    // [L]
  const int32_t* chunk_len;   // [C]
  uint32_t* select;           // [NH, L, W]
  uint32_t* block_or;         // [NH, nb, W]
  uint32_t* block_and;        // [NH, nb, W]
  unsigned long long* kept;   // [1]
  int64_t L, nb;
  int NH, HD, C, Cpad, W, block;
  int mode;                   // GateMode
  int k_other;                // non-self chunks per query (list modes)
  int rank;                   // 1-based list position of the threshold (list modes)
  int stride;                 // gate row stride in shared memory (odd: conflict-free per-row reads)
};

__device__ __forceinline__ uint4 load16(const void* base, int64_t elem) {
  return __ldg(reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(base) + elem));
}

// Shared-memory 16-byte chunk of (chunk row c, 16-byte column ch) of one part of the staged means: rows are
// HD/8 chunks, odd rows swap their 64-byte halves, so the two rows a quarter-warp reads in one 128-bit phase
// (rows g, g+1 at the same columns) fall in different banks.
__device__ __forceinline__ int split_chunk(int c, int ch, int row_chunks) {
  return c * row_chunks + (ch ^ ((c & 1) << 2));
}

// grid (⌈L / R⌉, NH), R = blockDim.x ∈ {128, 256, 512} threads (R query positions), dynamic shared memory:
// the head's three mean parts [3, Cpad, HD] (16-bit, swizzled) then the gates [R, stride] f32.
//  1. Gates of the CTA's R rearranged queries for all chunks (list modes only): warp w owns rows
//     32w … 32w+31 (two m16 tiles), A = q rows (bf16/f16 exact) in registers, B = the three parts of each
//     chunk mean from shared memory, f32 accumulation. Lane (g, t) takes 16 bytes at d = 32j + 8t of rows g,
//     g+8 and of chunk 8·nt + g as the k-slots {2t, 2t+1, 2t+8, 2t+9} of k-steps 2j (bytes 0–7) and 2j+1
//     (bytes 8–15): the same permutation of the head dim for A and B, so the dot products are unchanged.
//  2. One thread per query: self chunk + the k_other largest other gates (ties: lower chunk index), via an
//     S-entry sorted register list (the k_other-th largest value) and one pass for values above it and the
//     first ties; writes select[h, n, :]; the kept keys are summed per CTA (one atomic).
//  3. OR / AND of the rows of each kernel query block (block 64: two warps, 128: four) → block_or/and.
template <class T, int S>
__global__ void __launch_bounds__(kGateMaxThreads, 1) gate_select_kernel(GateParams p) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ int32_t s_len[VmobaDevicePlanner::kMaxChunks];
  __shared__ uint32_t s_or[kGateMaxThreads / 32][kMaxWords], s_and[kGateMaxThreads / 32][kMaxWords];
  __shared__ uint32_t s_kept[kGateMaxThreads / 32];
  const int R = blockDim.x;
  const int h = blockIdx.y;
  const int64_t n_base = static_cast<int64_t>(blockIdx.x) * R;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int row_chunks = p.HD / 8;
  uint4* sb = reinterpret_cast<uint4*>(smem);  // [3, Cpad, HD/8] 16-byte chunks
  float* sg = reinterpret_cast<float*>(smem + static_cast<size_t>(kParts) * p.Cpad * p.HD * 2);  // [R, stride]
  for (int c = threadIdx.x; c < p.C; c += R) s_len[c] = p.chunk_len[c];

  if (p.mode >= kTopList) {
    const int64_t ld = static_cast<int64_t>(p.NH) * p.HD;
    const int J = p.HD / 32;  // 16-byte loads per row and lane
    uint4 a[2][2][4];         // [m tile][row g | g+8][j]
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int64_t n = n_base + 32 * warp + 16 * mt + 8 * half + g;
        const int64_t row = n < p.L ? static_cast<int64_t>(p.perm[n]) * ld + static_cast<int64_t>(h) * p.HD : -1;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          a[mt][half][j] = make_uint4(0, 0, 0, 0);
          if (row >= 0 && j < J) a[mt][half][j] = load16(p.q, row + 32 * j + 8 * t4);
        }
      }
    // Stage the head's mean parts (global [3, NH, Cpad, HD]) while the q loads are in flight.
    const int per_part = p.Cpad * row_chunks;
    const int64_t plane = static_cast<int64_t>(p.NH) * p.Cpad * p.HD;
    for (int i = threadIdx.x; i < kParts * per_part; i += R) {
      const int part = i / per_part, c = i % per_part / row_chunks, ch = i % row_chunks;
      sb[part * per_part + split_chunk(c, ch, row_chunks)] =
          load16(p.split, part * plane + (static_cast<int64_t>(h) * p.Cpad + c) * p.HD + 8 * ch);
    }
    __syncthreads();
    for (int nt = 0; nt < p.Cpad / 8; ++nt) {
      float acc[2][4];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) acc[mt][0] = acc[mt][1] = acc[mt][2] = acc[mt][3] = 0.f;
      const int c = 8 * nt + g;
#pragma unroll
      for (int part = kParts - 1; part >= 0; --part) {  // smallest part first
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          if (j >= J) break;
          const uint4 b = sb[part * per_part + split_chunk(c, 4 * j + t4, row_chunks)];
#pragma unroll
          for (int mt = 0; mt < 2; ++mt) {
            {
              const uint32_t af[4] = {a[mt][0][j].x, a[mt][1][j].x, a[mt][0][j].y, a[mt][1][j].y};
              cuda_bs::Mma<T>::mma(acc[mt], af, b.x, b.y);
            }
            {
              const uint32_t af[4] = {a[mt][0][j].z, a[mt][1][j].z, a[mt][0][j].w, a[mt][1][j].w};
              cuda_bs::Mma<T>::mma(acc[mt], af, b.z, b.w);
            }
          }
        }
      }
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int col = 8 * nt + 2 * t4 + e;
          if (col < p.C) {
            const int r = 32 * warp + 16 * mt + g;
            sg[r * p.stride + col] = acc[mt][e];
            sg[(r + 8) * p.stride + col] = acc[mt][2 + e];
          }
        }
    }
  }
  __syncthreads();

  const int r = threadIdx.x;
  const int64_t n = n_base + r;
  const bool valid = n < p.L;
  uint32_t mask[kMaxWords] = {0u, 0u, 0u, 0u};  // indexed by compile-time words only (stays in registers)
  uint32_t kept = 0;
  if (valid) {
    const int self = p.chunk_of[n];
    const float* gr = sg + r * p.stride;
    // Threshold thr = the k_other-th largest other gate; `ties` = how many others equal to it to take.
    float thr = INFINITY;
    int ties = 0;
    if (p.mode >= kTopList) {
      const bool bottom = p.mode == kBottomList;
      float lst[S];
#pragma unroll
      for (int i = 0; i < S; ++i) lst[i] = bottom ? INFINITY : -INFINITY;
      for (int c = 0; c < p.C; ++c) {
        if (c == self) continue;
        float v = gr[c];
        if (bottom) {
#pragma unroll
          for (int i = 0; i < S; ++i) {
            const float lo = fminf(lst[i], v);
            v = fmaxf(lst[i], v);
            lst[i] = lo;
          }
        } else {
#pragma unroll
          for (int i = 0; i < S; ++i) {
            const float hi = fmaxf(lst[i], v);
            v = fminf(lst[i], v);
            lst[i] = hi;
          }
        }
      }
      // lst[rank − 1] as a reduction over the sorted list (a selected index would put lst in local memory).
      thr = bottom ? -INFINITY : INFINITY;
#pragma unroll
      for (int i = 0; i < S; ++i) {
        if (i < p.rank) thr = bottom ? fmaxf(thr, lst[i]) : fminf(thr, lst[i]);
      }
      int above = 0;
      for (int c = 0; c < p.C; ++c) above += (c != self && gr[c] > thr) ? 1 : 0;
      ties = p.k_other - above;
    }
#pragma unroll
    for (int w = 0; w < kMaxWords; ++w) {
      if (w >= p.W) break;
      uint32_t m = 0u;
      for (int b = 0; b < 32; ++b) {
        const int c = 32 * w + b;
        if (c >= p.C) break;
        bool on = c == self || p.mode == kAllChunks;
        if (!on && p.mode >= kTopList) {
          const float v = gr[c];
          on = v > thr || (v == thr && ties-- > 0);  // equal values: the lowest chunks first
        }
        m |= on ? 1u << b : 0u;
      }
      mask[w] = m;
    }
    uint32_t* dst = p.select + (static_cast<int64_t>(h) * p.L + n) * p.W;
#pragma unroll
    for (int w = 0; w < kMaxWords; ++w) {
      if (w >= p.W) break;
      dst[w] = mask[w];
      uint32_t m = mask[w];
      while (m) {
        kept += static_cast<uint32_t>(s_len[32 * w + __ffs(m) - 1]);
        m &= m - 1;
      }
    }
  }
  const uint32_t warp_kept = __reduce_add_sync(0xffffffffu, kept);
  if (lane == 0) s_kept[warp] = warp_kept;
#pragma unroll
  for (int w = 0; w < kMaxWords; ++w) {
    const uint32_t o = __reduce_or_sync(0xffffffffu, mask[w]);
    const uint32_t a = __reduce_and_sync(0xffffffffu, valid ? mask[w] : 0xffffffffu);
    if (lane == 0) {
      s_or[warp][w] = o;
      s_and[warp][w] = a;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned long long cta_kept = 0;
    for (int w = 0; w < R / 32; ++w) cta_kept += s_kept[w];
    if (cta_kept) atomicAdd(p.kept, cta_kept);
  }
  const int warps_per_block = p.block / 32, blocks_here = R / p.block;
  if (static_cast<int>(threadIdx.x) < blocks_here * p.W) {
    const int qbl = threadIdx.x / p.W, w = threadIdx.x % p.W;
    const int64_t qb = n_base / p.block + qbl;
    if (qb < p.nb) {
      uint32_t o = 0u, a = 0xffffffffu;
      for (int i = qbl * warps_per_block; i < (qbl + 1) * warps_per_block; ++i) {
        o |= s_or[i][w];
        a &= s_and[i][w];
      }
      const int64_t at = (static_cast<int64_t>(h) * p.nb + qb) * p.W + w;
      p.block_or[at] = o;
      p.block_and[at] = a;
    }
  }
}

// State of key block kb for a query block with row masks OR `o` / AND `a`: 0 absent, 1 full, 2 partial.
// Chunks [cr.x, cr.y] overlap kb: listed if a row selects one of them, full if every row selects all of them
// and kb is not the (clipped) sequence tail.
__device__ __forceinline__ int block_state(const uint32_t (&o)[kMaxWords], const uint32_t (&a)[kMaxWords], int W,
                                           int2 cr, bool tail) {
  bool any = false, all = true;
#pragma unroll
  for (int w = 0; w < kMaxWords; ++w) {
    if (w >= W) break;
    const int lo = max(cr.x, 32 * w) - 32 * w, hi = min(cr.y, 32 * w + 31) - 32 * w;
    if (lo > hi) continue;
    const uint32_t bits = (hi == 31 ? 0xffffffffu : (1u << (hi + 1)) - 1u) & ~((1u << lo) - 1u);
    any = any || (o[w] & bits) != 0u;
    all = all && (a[w] & bits) == bits;
  }
  return !any ? 0 : (all && !tail) ? 1 : 2;
}

__device__ __forceinline__ void load_row_masks(uint32_t (&o)[kMaxWords], uint32_t (&a)[kMaxWords],
                                               const uint32_t* block_or, const uint32_t* block_and, int64_t row,
                                               int W) {
#pragma unroll
  for (int w = 0; w < kMaxWords; ++w) {
    o[w] = w < W ? block_or[row * W + w] : 0u;
    a[w] = w < W ? block_and[row * W + w] : 0u;
  }
}

// One warp per row (h, qb): counts[row] = full blocks, counts[rows + row] = partial blocks.
__global__ void count_kernel(int32_t* counts, const uint32_t* block_or, const uint32_t* block_and,
                             const int2* block_chunks, int64_t nb, int64_t rows, int W, int64_t tail_kb) {
  const int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  uint32_t o[kMaxWords], a[kMaxWords];
  load_row_masks(o, a, block_or, block_and, row, W);
  int f = 0, q = 0;
  for (int64_t kb = lane; kb < nb; kb += 32) {
    const int st = block_state(o, a, W, block_chunks[kb], kb == tail_kb);
    f += st == 1 ? 1 : 0;
    q += st == 2 ? 1 : 0;
  }
  f = __reduce_add_sync(0xffffffffu, f);
  q = __reduce_add_sync(0xffffffffu, q);
  if (lane == 0) {
    counts[row] = f;
    counts[rows + row] = q;
  }
}

// Two CTAs of 1024 threads: CTA 0 scans the full counts into full_ptr, CTA 1 the partial ones into part_ptr
// (ptr[0] = 0, ptr[r + 1] = counts[0] + … + counts[r]).
__global__ void scan_kernel(int64_t* full_ptr, int64_t* part_ptr, const int32_t* counts, int64_t rows) {
  __shared__ long long part[1024];
  int64_t* ptr = blockIdx.x == 0 ? full_ptr : part_ptr;
  const int32_t* cnt = counts + (blockIdx.x == 0 ? 0 : rows);
  const int64_t per = (rows + blockDim.x - 1) / blockDim.x;
  const int64_t a = threadIdx.x * per, b = min(rows, a + per);
  long long s = 0;
  for (int64_t r = a; r < b; ++r) s += cnt[r];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int off = 1; off < static_cast<int>(blockDim.x); off <<= 1) {
    const long long v = threadIdx.x >= static_cast<unsigned>(off) ? part[threadIdx.x - off] : 0;
    __syncthreads();
    part[threadIdx.x] += v;
    __syncthreads();
  }
  long long run = part[threadIdx.x] - s;
  if (threadIdx.x == 0) ptr[0] = 0;
  for (int64_t r = a; r < b; ++r) {
    run += cnt[r];
    ptr[r + 1] = run;
  }
}

// One warp per row: the sorted full and partial key-block lists, compacted with ballots.
__global__ void fill_kernel(int32_t* full_idx, int32_t* part_idx, const int64_t* full_ptr, const int64_t* part_ptr,
                            const uint32_t* block_or, const uint32_t* block_and, const int2* block_chunks, int64_t nb,
                            int64_t rows, int W, int64_t tail_kb) {
  const int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  uint32_t o[kMaxWords], a[kMaxWords];
  load_row_masks(o, a, block_or, block_and, row, W);
  int64_t fb = full_ptr[row], pb = part_ptr[row];
  const uint32_t below = (1u << lane) - 1u;
  for (int64_t kb0 = 0; kb0 < nb; kb0 += 32) {
    const int64_t kb = kb0 + lane;
    const int st = kb < nb ? block_state(o, a, W, block_chunks[kb], kb == tail_kb) : 0;
    const uint32_t fbal = __ballot_sync(0xffffffffu, st == 1), pbal = __ballot_sync(0xffffffffu, st == 2);
    if (st == 1) full_idx[fb + __popc(fbal & below)] = static_cast<int32_t>(kb);
    if (st == 2) part_idx[pb + __popc(pbal & below)] = static_cast<int32_t>(kb);
    fb += __popc(fbal);
    pb += __popc(pbal);
  }
}

// One CTA per head: its rows in launch order, most listed blocks first, ties by query block (as
// block_sparse_work_order): rank(qb) = number of rows ahead of qb.
__global__ void order_kernel(int32_t* items, const int32_t* counts, int64_t nb, int64_t rows) {
  extern __shared__ int32_t cnt[];  // [nb + kOrderPad]
  const int64_t h = blockIdx.x;
  for (int64_t i = threadIdx.x; i < nb + kOrderPad; i += blockDim.x) {
    cnt[i] = i < nb ? counts[h * nb + i] + counts[rows + h * nb + i] : 0;
  }
  __syncthreads();
  for (int64_t qb = threadIdx.x; qb < nb; qb += blockDim.x) {
    const int32_t c = cnt[qb];
    int64_t rank = 0;
    for (int64_t o = 0; o < nb; ++o) rank += (cnt[o] > c || (cnt[o] == c && o < qb)) ? 1 : 0;
    items[h * nb + rank] = static_cast<int32_t>(h * nb + qb);
  }
}

template <class T, int S>
Status launch_gate(const GateParams& p, dim3 grid, int threads, size_t smem, cudaStream_t stream) {
  if (smem > 48 * 1024) {
    VDIT_CHECK(cudaFuncSetAttribute(gate_select_kernel<T, S>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smem)));
  }
  gate_select_kernel<T, S><<<grid, threads, smem, stream>>>(p);
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

// The register list length: the smallest instance ≥ `need` (≤ 64 = (kMaxChunks − 1 + 1) / 2). The steps are
// fine where the presets fall (k − 1 = 1, 5, 8, 9, 17) since every entry costs two min/max per other chunk.
template <class T>
Status launch_gate_for(int need, const GateParams& p, dim3 grid, int threads, size_t smem, cudaStream_t stream) {
  if (need <= 2) return launch_gate<T, 2>(p, grid, threads, smem, stream);
  if (need <= 4) return launch_gate<T, 4>(p, grid, threads, smem, stream);
  if (need <= 6) return launch_gate<T, 6>(p, grid, threads, smem, stream);
  if (need <= 8) return launch_gate<T, 8>(p, grid, threads, smem, stream);
  if (need <= 10) return launch_gate<T, 10>(p, grid, threads, smem, stream);
  if (need <= 12) return launch_gate<T, 12>(p, grid, threads, smem, stream);
  if (need <= 16) return launch_gate<T, 16>(p, grid, threads, smem, stream);
  if (need <= 18) return launch_gate<T, 18>(p, grid, threads, smem, stream);
  if (need <= 24) return launch_gate<T, 24>(p, grid, threads, smem, stream);
  if (need <= 32) return launch_gate<T, 32>(p, grid, threads, smem, stream);
  if (need <= 48) return launch_gate<T, 48>(p, grid, threads, smem, stream);
  if (need <= 64) return launch_gate<T, 64>(p, grid, threads, smem, stream);
  return internal_error(strfmt("vmoba GPU planner: a top-k list of %d entries (at most 64)", need));
}

}  // namespace

Result<const VmobaDevicePlanner::DevicePartition*> VmobaDevicePlanner::device_partition(
    const std::shared_ptr<const VmobaPartition>& part, int block) {
  const auto key = std::make_pair(part.get(), block);
  auto it = parts_.find(key);
  if (it != parts_.end()) return static_cast<const DevicePartition*>(it->second.get());
  const VmobaPartition& hp = *part;
  const int C = hp.num_chunks();
  const int64_t L = static_cast<int64_t>(hp.perm.size()), nb = (L + block - 1) / block;
  std::vector<int32_t> len(static_cast<size_t>(C)), slab_begin(static_cast<size_t>(C) + 1);
  std::vector<int2> slabs, chunks(static_cast<size_t>(nb));
  for (int c = 0; c < C; ++c) {
    slab_begin[c] = static_cast<int32_t>(slabs.size());
    len[c] = static_cast<int32_t>(hp.cu_chunk[c + 1] - hp.cu_chunk[c]);
    for (int64_t n0 = hp.cu_chunk[c]; n0 < hp.cu_chunk[c + 1]; n0 += kSlab) {
      slabs.push_back(make_int2(static_cast<int>(n0), static_cast<int>(std::min(n0 + kSlab, hp.cu_chunk[c + 1]))));
    }
  }
  slab_begin[C] = static_cast<int32_t>(slabs.size());
  for (int64_t kb = 0; kb < nb; ++kb) {
    chunks[kb] = make_int2(hp.chunk_of[kb * block], hp.chunk_of[std::min(L, (kb + 1) * block) - 1]);
  }
  auto dp = std::make_unique<DevicePartition>();
  dp->host = part;
  dp->C = C;
  dp->L = L;
  dp->nb = nb;
  dp->slabs = static_cast<int64_t>(slabs.size());
  VDIT_TRY(upload(&dp->perm, hp.perm));
  VDIT_TRY(upload(&dp->chunk_of, hp.chunk_of));
  VDIT_TRY(upload(&dp->chunk_len, len));
  VDIT_TRY(upload(&dp->slab_range, slabs));
  VDIT_TRY(upload(&dp->slab_begin, slab_begin));
  VDIT_TRY(upload(&dp->block_chunks, chunks));
  const DevicePartition* raw = dp.get();
  parts_[key] = std::move(dp);
  return raw;
}

Status VmobaDevicePlanner::reserve(const DevicePartition& dp, int NH, int HD) {
  const size_t ld = static_cast<size_t>(NH) * HD, C = static_cast<size_t>(dp.C), Cpad = (C + 7) / 8 * 8;
  const size_t L = static_cast<size_t>(dp.L), nb = static_cast<size_t>(dp.nb), W = (C + 31) / 32;
  const size_t rows = static_cast<size_t>(NH) * nb;
  VDIT_TRY(grow(&partial_, sizeof(double) * static_cast<size_t>(dp.slabs) * ld));
  VDIT_TRY(grow(&key_mean_, sizeof(float) * C * ld));
  VDIT_TRY(grow(&key_split_, 2 * kParts * Cpad * ld));
  VDIT_TRY(grow(&select_, sizeof(uint32_t) * NH * L * W));
  VDIT_TRY(grow(&block_or_, sizeof(uint32_t) * rows * W));
  VDIT_TRY(grow(&block_and_, sizeof(uint32_t) * rows * W));
  VDIT_TRY(grow(&counts_, sizeof(int32_t) * 2 * rows));
  VDIT_TRY(grow(&full_ptr_, sizeof(int64_t) * (rows + 1)));
  VDIT_TRY(grow(&part_ptr_, sizeof(int64_t) * (rows + 1)));
  VDIT_TRY(grow(&full_idx_, sizeof(int32_t) * rows * nb));
  VDIT_TRY(grow(&part_idx_, sizeof(int32_t) * rows * nb));
  VDIT_TRY(grow(&items_, sizeof(int32_t) * rows));
  VDIT_TRY(grow(&kept_, sizeof(unsigned long long)));
  return Status::ok();
}

Status VmobaDevicePlanner::plan(const DeviceQKV& qkv, const std::shared_ptr<const VmobaPartition>& part, int block,
                                int topk) {
  return plan_impl(qkv, part, block, topk, nullptr);
}

Status VmobaDevicePlanner::plan_impl(const DeviceQKV& qkv, const std::shared_ptr<const VmobaPartition>& part,
                                     int block, int topk, void* const* events) {
  view_ = DeviceGatheredView();
  L_ = 0;
  if (!part) return invalid_argument("vmoba GPU planner: no partition");
  const int64_t L = static_cast<int64_t>(part->perm.size());
  const int C = part->num_chunks();
  if (!qkv.q || !qkv.k) return invalid_argument("vmoba GPU planner: null q or k");
  if (qkv.L != L || qkv.keys() != L) {
    return invalid_argument(strfmt("vmoba GPU planner: the partition has %lld tokens, the call %lld queries and %lld "
                                   "keys; vmoba partitions the video tokens of self-attention only",
                                   static_cast<long long>(L), static_cast<long long>(qkv.L),
                                   static_cast<long long>(qkv.keys())));
  }
  if (qkv.HD != 64 && qkv.HD != 128) {
    return unsupported(strfmt("vmoba on the GPU: head dim %d (64 and 128 only, as the kernel)", qkv.HD));
  }
  if (block != 64 && block != 128) {
    return invalid_argument(strfmt("vmoba GPU planner: block %d (64 or 128)", block));
  }
  if (C < 1 || C > kMaxChunks) {
    return unsupported(strfmt("vmoba on the GPU: %d chunks in this layer's partition (at most %d: the kernel's "
                              "selection mask holds 4 words); use larger chunk boxes or --device cpu",
                              C, kMaxChunks));
  }
  if (topk < 1) return invalid_argument(strfmt("vmoba GPU planner: topk %d (must be >= 1)", topk));
  if (qkv.NH < 1 || L < 1) return invalid_argument("vmoba GPU planner: empty call");
  VDIT_ASSIGN(const DevicePartition* dp, device_partition(part, block));
  VDIT_TRY(reserve(*dp, qkv.NH, qkv.HD));

  auto stream = static_cast<cudaStream_t>(qkv.stream);
  auto mark = [&](int i) {
    if (events) cudaEventRecord(static_cast<cudaEvent_t>(events[i]), stream);
  };
  const int NH = qkv.NH, HD = qkv.HD, Cpad = (C + 7) / 8 * 8, W = (C + 31) / 32;
  const int64_t ld = static_cast<int64_t>(NH) * HD, nb = dp->nb, rows = static_cast<int64_t>(NH) * nb;
  const bool bf16 = qkv.dtype == DeviceDType::bf16;
  mark(0);
  VDIT_CHECK(cudaMemsetAsync(kept_.data(), 0, sizeof(unsigned long long), stream));
  {
    const int threads = static_cast<int>(std::min<int64_t>(256, (ld / 8 + 31) / 32 * 32));
    const dim3 grid(static_cast<unsigned>(dp->slabs), static_cast<unsigned>((ld / 8 + threads - 1) / threads));
    const dim3 block(static_cast<unsigned>(threads), 2);
    const auto* slabs = dp->slab_range.as<const int2>();
    if (bf16) {
      key_sum_kernel<<<grid, block, 0, stream>>>(partial_.as<double>(), static_cast<const __nv_bfloat16*>(qkv.k),
                                                   dp->perm.as<const int32_t>(), slabs, ld);
    } else {
      key_sum_kernel<<<grid, block, 0, stream>>>(partial_.as<double>(), static_cast<const __half*>(qkv.k),
                                                   dp->perm.as<const int32_t>(), slabs, ld);
    }
    VDIT_CHECK_LAUNCH();
    const dim3 mgrid(static_cast<unsigned>(Cpad), static_cast<unsigned>((ld + 255) / 256));
    if (bf16) {
      key_mean_kernel<<<mgrid, 256, 0, stream>>>(key_mean_.as<float>(), key_split_.as<__nv_bfloat16>(),
                                                 partial_.as<const double>(), dp->slab_begin.as<const int32_t>(),
                                                 dp->chunk_len.as<const int32_t>(), ld, NH, HD, C, Cpad);
    } else {
      key_mean_kernel<<<mgrid, 256, 0, stream>>>(key_mean_.as<float>(), key_split_.as<__half>(),
                                                 partial_.as<const double>(), dp->slab_begin.as<const int32_t>(),
                                                 dp->chunk_len.as<const int32_t>(), ld, NH, HD, C, Cpad);
    }
    VDIT_CHECK_LAUNCH();
  }
  mark(1);
  {
    GateParams p;
    p.q = qkv.q;
    p.split = key_split_.data();
    p.perm = dp->perm.as<const int32_t>();
    p.chunk_of = dp->chunk_of.as<const int32_t>();
    p.chunk_len = dp->chunk_len.as<const int32_t>();
    p.select = select_.as<uint32_t>();
    p.block_or = block_or_.as<uint32_t>();
    p.block_and = block_and_.as<uint32_t>();
    p.kept = kept_.as<unsigned long long>();
    p.L = L;
    p.nb = nb;
    p.NH = NH;
    p.HD = HD;
    p.C = C;
    p.Cpad = Cpad;
    p.W = W;
    p.block = block;
    // k_other of the C − 1 other chunks; the k_other-th largest is the (C − k_other)-th smallest, so the
    // shorter of the two register lists finds it.
    const int others = C - 1, k_other = std::min(topk, C) - 1;
    int need = 2;
    if (k_other <= 0) {
      p.mode = kSelfOnly;
    } else if (k_other >= others) {
      p.mode = kAllChunks;
    } else if (k_other <= others - k_other + 1) {
      p.mode = kTopList;
      need = p.rank = k_other;
    } else {
      p.mode = kBottomList;
      need = p.rank = others - k_other + 1;
    }
    p.k_other = k_other;
    if (p.mode < kTopList) p.rank = 1;
    p.stride = C % 2 == 1 ? C : C + 1;
    // Rows per CTA: 512 (16 warps, one CTA per SM) unless the staged means and the gates outgrow shared
    // memory (many chunks), then 256 or 128.
    int threads = kGateMaxThreads;
    auto smem_for = [&](int rows) {
      return p.mode >= kTopList ? static_cast<size_t>(kParts) * Cpad * HD * 2 + sizeof(float) * rows * p.stride : 0;
    };
    while (threads > 128 && smem_for(threads) > static_cast<size_t>(kGateMaxSmem)) threads /= 2;
    const size_t smem = smem_for(threads);
    if (smem > static_cast<size_t>(kGateMaxSmem)) {
      return internal_error(strfmt("vmoba GPU planner: %d chunks need %zu bytes of shared memory", C, smem));
    }
    const dim3 grid(static_cast<unsigned>((L + threads - 1) / threads), static_cast<unsigned>(NH));
    if (bf16) {
      VDIT_TRY(launch_gate_for<__nv_bfloat16>(need, p, grid, threads, smem, stream));
    } else {
      VDIT_TRY(launch_gate_for<__half>(need, p, grid, threads, smem, stream));
    }
  }
  mark(2);
  const int64_t tail_kb = L % block != 0 ? nb - 1 : -1;
  const unsigned warps_grid = static_cast<unsigned>((rows * 32 + 255) / 256);
  count_kernel<<<warps_grid, 256, 0, stream>>>(counts_.as<int32_t>(), block_or_.as<const uint32_t>(),
                                               block_and_.as<const uint32_t>(), dp->block_chunks.as<const int2>(), nb,
                                               rows, W, tail_kb);
  VDIT_CHECK_LAUNCH();
  const bool ordered = nb <= kMaxOrderBlocks;
  if (ordered) {
    order_kernel<<<NH, 1024, sizeof(int32_t) * static_cast<size_t>(nb + kOrderPad), stream>>>(
        items_.as<int32_t>(), counts_.as<const int32_t>(), nb, rows);
    VDIT_CHECK_LAUNCH();
  }
  mark(3);
  scan_kernel<<<2, 1024, 0, stream>>>(full_ptr_.as<int64_t>(), part_ptr_.as<int64_t>(), counts_.as<const int32_t>(),
                                      rows);
  VDIT_CHECK_LAUNCH();
  fill_kernel<<<warps_grid, 256, 0, stream>>>(full_idx_.as<int32_t>(), part_idx_.as<int32_t>(),
                                              full_ptr_.as<const int64_t>(), part_ptr_.as<const int64_t>(),
                                              block_or_.as<const uint32_t>(), block_and_.as<const uint32_t>(),
                                              dp->block_chunks.as<const int2>(), nb, rows, W, tail_kb);
  VDIT_CHECK_LAUNCH();
  mark(4);

  view_.block = block;
  view_.positions = L;
  view_.slots = dp->perm.as<const int32_t>();
  view_.head_shared = false;
  view_.full_ptr = full_ptr_.as<const int64_t>();
  view_.full_idx = full_idx_.as<const int32_t>();
  view_.part_ptr = part_ptr_.as<const int64_t>();
  view_.part_idx = part_idx_.as<const int32_t>();
  view_.items = ordered ? items_.as<const int32_t>() : nullptr;
  view_.chunk_of = dp->chunk_of.as<const int32_t>();
  view_.select = select_.as<const uint32_t>();
  view_.select_words = W;
  C_ = C, NH_ = NH, HD_ = HD, words_ = W, L_ = L, nb_ = nb;
  return Status::ok();
}

Result<std::vector<double>> VmobaDevicePlanner::profile(const DeviceQKV& qkv,
                                                        const std::shared_ptr<const VmobaPartition>& part, int block,
                                                        int topk, int reps) {
  VDIT_TRY(plan(qkv, part, block, topk));  // uploads and workspace outside the timed plans
  cudaEvent_t ev[5];
  for (auto& e : ev) VDIT_CHECK(cudaEventCreate(&e));
  auto destroy = [&] {
    for (auto& e : ev) cudaEventDestroy(e);
  };
  std::vector<double> ms(4, 0.0);
  for (int r = 0; r < reps; ++r) {
    void* raw[5] = {ev[0], ev[1], ev[2], ev[3], ev[4]};
    const Status st = plan_impl(qkv, part, block, topk, raw);
    if (!st.is_ok()) {
      destroy();
      return st;
    }
    if (cudaEventSynchronize(ev[4]) != cudaSuccess) {
      destroy();
      return internal_error("vmoba GPU planner: profiling failed");
    }
    for (int i = 0; i < 4; ++i) {
      float t = 0;
      cudaEventElapsedTime(&t, ev[i], ev[i + 1]);
      ms[i] += t / reps;
    }
  }
  destroy();
  return ms;
}

Result<VmobaDevicePlan> VmobaDevicePlanner::download(void* stream) const {
  if (L_ <= 0) return invalid_argument("vmoba GPU planner: nothing planned yet");
  VDIT_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  VmobaDevicePlan p;
  p.C = C_, p.NH = NH_, p.HD = HD_, p.block = view_.block, p.words = words_, p.L = L_, p.nb = nb_;
  const size_t rows = static_cast<size_t>(NH_) * static_cast<size_t>(nb_);
  p.key_mean.resize(static_cast<size_t>(C_) * NH_ * HD_);
  VDIT_TRY(key_mean_.copy_to_host(p.key_mean.data(), p.key_mean.size() * sizeof(float)));
  p.select.resize(static_cast<size_t>(NH_) * static_cast<size_t>(L_) * words_);
  VDIT_TRY(select_.copy_to_host(p.select.data(), p.select.size() * sizeof(uint32_t)));
  p.full_ptr.resize(rows + 1);
  p.part_ptr.resize(rows + 1);
  VDIT_TRY(full_ptr_.copy_to_host(p.full_ptr.data(), p.full_ptr.size() * sizeof(int64_t)));
  VDIT_TRY(part_ptr_.copy_to_host(p.part_ptr.data(), p.part_ptr.size() * sizeof(int64_t)));
  p.full_idx.resize(static_cast<size_t>(p.full_ptr.back()));
  p.part_idx.resize(static_cast<size_t>(p.part_ptr.back()));
  if (!p.full_idx.empty()) VDIT_TRY(full_idx_.copy_to_host(p.full_idx.data(), p.full_idx.size() * sizeof(int32_t)));
  if (!p.part_idx.empty()) VDIT_TRY(part_idx_.copy_to_host(p.part_idx.data(), p.part_idx.size() * sizeof(int32_t)));
  if (view_.items) {
    p.items.resize(rows);
    VDIT_TRY(items_.copy_to_host(p.items.data(), rows * sizeof(int32_t)));
  }
  unsigned long long kept = 0;
  VDIT_TRY(kept_.copy_to_host(&kept, sizeof(kept)));
  p.kept = kept;
  return p;
}

Result<double> VmobaDevicePlanner::element_density(void* stream) const {
  if (L_ <= 0) return invalid_argument("vmoba GPU planner: nothing planned yet");
  VDIT_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  unsigned long long kept = 0;
  VDIT_TRY(kept_.copy_to_host(&kept, sizeof(kept)));
  return static_cast<double>(kept) / (static_cast<double>(NH_) * static_cast<double>(L_) * static_cast<double>(L_));
}

Result<double> VmobaDevicePlanner::block_density(void* stream) const {
  if (L_ <= 0) return invalid_argument("vmoba GPU planner: nothing planned yet");
  VDIT_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  const int64_t rows = static_cast<int64_t>(NH_) * nb_;
  int64_t f = 0, q = 0;
  VDIT_CHECK(cudaMemcpy(&f, full_ptr_.as<int64_t>() + rows, sizeof(int64_t), cudaMemcpyDeviceToHost));
  VDIT_CHECK(cudaMemcpy(&q, part_ptr_.as<int64_t>() + rows, sizeof(int64_t), cudaMemcpyDeviceToHost));
  return static_cast<double>(f + q) / (static_cast<double>(rows) * static_cast<double>(nb_));
}

}  // namespace vdit::attn
