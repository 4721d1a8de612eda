// Internal to draft_device.cu (included once, after draft_device_map.cuh): the planner's third launch — one
// cooperative grid that finishes the per-head radix select (threshold), counts each row's full / part blocks,
// builds the CSR pointers and lists and the launch order — and its scratch sizes.
#pragma once

#include <cooperative_groups.h>

#include <limits>

#include "attention/cuda/planners/draft_device_map.cuh"

namespace cg = cooperative_groups;

namespace vdit::attn {
namespace {

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

size_t scratch_hist_words(int NH) { return static_cast<size_t>(3) * NH * kSelBins; }
size_t scratch_bytes(int NH) {
  return sizeof(uint32_t) * scratch_hist_words(NH) + sizeof(unsigned long long) * 2 * static_cast<size_t>(NH);
}

}  // namespace
}  // namespace vdit::attn
