// Internal to the block-sparse kernel: the FA2-style main loop over one row's listed key blocks with
// mma.sync m16n8k16 (sm_80+): cp.async double-buffered K/V tiles in swizzled shared memory, ldmatrix
// (.trans for V), online softmax in exp2 with log2(e)·scale folded, P kept in registers as the A operand
// of P·V. It walks the partial list, then the full list, prefetching the next list entry's tile while
// computing the current one. A wgmma/TMA main loop would replace this file behind the same Accumulators.
#pragma once

#include <cmath>

#include "attention/cuda/block_sparse_common.cuh"
#include "attention/cuda/block_sparse_params.h"

namespace vdit::attn::cuda_bs {

// Per-thread online-softmax state of the warp's kMTiles·16 query rows: row g and g + 8 of each m16 tile.
template <class Tr>
struct Accumulators {
  float o[Tr::kMTiles][Tr::kDTiles][4];  // unnormalized O, mma C layout
  float m[Tr::kMTiles][2];               // running max of the raw scores (quad-uniform)
  float l[Tr::kMTiles][2];               // this thread's part of the row sum of exp (reduced in the epilogue)
};

// What the main loop needs about one work item (head, query block).
template <class Tr>
struct RowWork {
  const typename Tr::T* k;  // k + head·HD; row stride NH·HD
  const typename Tr::T* v;
  const int32_t* perm;      // this head's permutation row, or null (gathered calls: -1 = pad slot)
  uint32_t* ssel;           // gathered instances: [kRowsQ, kSelWords] selection words of the query rows
  uint8_t* scode;           // gathered instances: [2, kKvTile] key codes of the two KV stages
  const int32_t* part;      // partial key blocks of the row
  int np;
  const int32_t* full;      // full key blocks of the row
  int nf;
  int q0;                   // first query position (method order) of the tile
  int64_t ld;               // NH · HD
};

// Loads rows [row0, row0 + ROWS) (method order, gathered through perm) of one head into a swizzled tile;
// rows past L (the positions) and pad slots (perm[n] < 0, gathered calls) are zero-filled. Issues cp.async
// only (the caller commits).
template <class Tr, int ROWS>
__device__ __forceinline__ void load_rows(typename Tr::T* dst, const typename Tr::T* src, const typename Tr::T* src2,
                                          typename Tr::T* dst2, int row0, int L, int64_t ld, const int32_t* perm,
                                          int tid) {
  constexpr int kIters = ROWS * Tr::kChunks / Tr::kThreads;
  constexpr int kRowsPerIter = Tr::kThreads / Tr::kChunks;
  const int chunk = tid % Tr::kChunks;
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const int row = tid / Tr::kChunks + i * kRowsPerIter;
    const int n = row0 + row;
    bool valid = n < L;
    int64_t src_row = valid ? (perm ? __ldg(perm + n) : n) : 0;
    if (perm && src_row < 0) {  // pad slot
      valid = false;
      src_row = 0;
    }
    const int64_t off = src_row * ld + chunk * 8;
    int so;
    if constexpr (Tr::kWgmma) {
      so = swizzle_slab<Tr::kHD, ROWS>(row, chunk);
    } else {
      so = swizzle<Tr::kHD>(row, chunk);
    }
    cp_async_16(smem_addr(dst + so), src + off, valid ? 16 : 0);
    if (src2) cp_async_16(smem_addr(dst2 + so), src2 + off, valid ? 16 : 0);
  }
}

// First key (method order) of KV tile t of the row.
template <class Tr>
__device__ __forceinline__ int tile_key0(const RowWork<Tr>& w, int t) {
  const int e = t / Tr::kSubTiles, sub = t % Tr::kSubTiles;
  const int blk = e < w.np ? __ldg(w.part + e) : __ldg(w.full + (e - w.np));
  return blk * Tr::kBlock + sub * Tr::kKvTile;
}

// Whether query qi may attend key kj (ElementPredicate::allows with 32-bit indices).
__device__ __forceinline__ bool predicate_allows(const BlockSparseParams& p, int qi, int kj) {
  if (qi < p.pred_video_begin || qi >= p.pred_video_end || kj < p.pred_video_begin || kj >= p.pred_video_end) {
    return true;
  }
  int d;
  if (p.pred_kind == kPredBand) {
    d = qi - kj;
  } else {
    d = (qi - p.pred_video_begin) % p.pred_frame_tokens - (kj - p.pred_video_begin) % p.pred_frame_tokens;
  }
  return (d < 0 ? -d : d) <= p.pred_half_width;
}

// Gathered instances: the key codes of one KV tile, written by warp 0 into its stage of scode while the
// tile's loads are in flight (the next barrier publishes them): one byte per key, 0xFF = dropped (past Lp
// or a pad slot), else the key's chunk id (kPredChunkMask) or 0.
template <class Tr>
__device__ __forceinline__ void write_key_codes(const BlockSparseParams& p, const RowWork<Tr>& w, int key0, int stage,
                                                int tid) {
  if (tid >= 32) return;
  uint32_t pair = 0;
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const int j = key0 + 2 * tid + e;
    uint32_t code = 0xFFu;
    if (j < p.Lp && __ldg(w.perm + j) >= 0) {
      code = p.pred_kind == kPredChunkMask ? static_cast<uint32_t>(__ldg(p.chunk_of + j)) & 0x7Fu : 0u;
    }
    pair |= code << (8 * e);
  }
  reinterpret_cast<uint16_t*>(w.scode + stage * Tr::kKvTile)[tid] = static_cast<uint16_t>(pair);
}

// Masked tiles of gathered calls (kPredPadMask, kPredChunkMask): sets S to -inf for keys past Lp, pad keys,
// and (chunk rule) keys whose chunk the query row's selection words exclude. Keys come as the stage's codes
// (write_key_codes), two per 16-bit shared load; the chunk rule reads one selection word per element from
// the shared copy of the CTA's query rows (few registers: the wgmma loop runs at its 128-register cap).
template <class Tr>
__device__ __forceinline__ void apply_mask_gathered(float (&s)[Tr::kMTiles][Tr::kNTiles][4],
                                                    const BlockSparseParams& p, const RowWork<Tr>& w, int qrow0,
                                                    int stage, int lane) {
  const int g = lane >> 2, c = lane & 3;
  const uint16_t* codes = reinterpret_cast<const uint16_t*>(w.scode + stage * Tr::kKvTile);
  if (p.pred_kind != kPredChunkMask) {
#pragma unroll
    for (int nt = 0; nt < Tr::kNTiles; ++nt) {
      const uint32_t pair = codes[nt * 4 + c];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        if (((pair >> (8 * e)) & 0xFFu) == 0xFFu) {
#pragma unroll
          for (int mt = 0; mt < Tr::kMTiles; ++mt) s[mt][nt][e] = s[mt][nt][2 + e] = -INFINITY;
        }
      }
    }
    return;
  }
  const int row0 = qrow0 - w.q0;  // the warp's first row in the CTA's query tile
#pragma unroll
  for (int nt = 0; nt < Tr::kNTiles; ++nt) {
    const uint32_t pair = codes[nt * 4 + c];
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const uint32_t code = (pair >> (8 * e)) & 0xFFu;
      const int word = static_cast<int>(code >> 5) & (Tr::kSelWords - 1);
#pragma unroll
      for (int mt = 0; mt < Tr::kMTiles; ++mt) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int row = row0 + mt * 16 + g + half * 8;
          const uint32_t sw = w.ssel[row * Tr::kSelWords + word];
          const bool keep = code != 0xFFu && ((sw >> (code & 31u)) & 1u) != 0u;
          if (!keep) s[mt][nt][half * 2 + e] = -INFINITY;
        }
      }
    }
  }
}

// Sets S to -inf where the key is past Lp (tail) or, in a partial block, where the predicate drops it
// (gathered calls: pad keys and the chunk rule, apply_mask_gathered).
template <class Tr>
__device__ __forceinline__ void apply_mask(float (&s)[Tr::kMTiles][Tr::kNTiles][4], const BlockSparseParams& p,
                                           const RowWork<Tr>& w, int qrow0, int key0, int stage, bool use_pred,
                                           int lane) {
  if constexpr (Tr::kGathered) {
    if (use_pred) {
      apply_mask_gathered<Tr>(s, p, w, qrow0, stage, lane);
      return;
    }
  }
  const int32_t* perm = w.perm;
  const int g = lane >> 2, c = lane & 3;
#pragma unroll
  for (int mt = 0; mt < Tr::kMTiles; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int qi = qrow0 + mt * 16 + g + half * 8;
      const bool q_valid = qi < p.Lp;
      const int qo = (use_pred && q_valid && p.pred_original_order && perm) ? __ldg(perm + qi) : qi;
#pragma unroll
      for (int nt = 0; nt < Tr::kNTiles; ++nt) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int kj = key0 + nt * 8 + 2 * c + e;
          bool keep = kj < p.Lp;
          if (keep && use_pred && q_valid) {
            const int ko = (p.pred_original_order && perm) ? __ldg(perm + kj) : kj;
            keep = predicate_allows(p, qo, ko);
          }
          if (!keep) s[mt][nt][half * 2 + e] = -INFINITY;
        }
      }
    }
  }
}

// Online softmax update of one KV tile (base 2): rescale O and l by exp2(m_old - m_new) and turn S into
// P = exp2(S·scale_log2 - m_new) in place.
template <class Tr>
__device__ __forceinline__ void softmax_update(float (&s)[Tr::kMTiles][Tr::kNTiles][4], Accumulators<Tr>& acc,
                                               float scale_log2) {
  // The O rescale is skipped when no row of the warp changed its max (most tiles once the max settles).
  float corr_rows[Tr::kMTiles][2];
#pragma unroll
  for (int mt = 0; mt < Tr::kMTiles; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = acc.m[mt][half];
#pragma unroll
      for (int nt = 0; nt < Tr::kNTiles; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][half * 2], s[mt][nt][half * 2 + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float ms = mx == -INFINITY ? 0.f : mx * scale_log2;
      const float corr = ex2(acc.m[mt][half] * scale_log2 - ms);
      acc.m[mt][half] = mx;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < Tr::kNTiles; ++nt) {
        const float p0 = ex2(fmaf(s[mt][nt][half * 2], scale_log2, -ms));
        const float p1 = ex2(fmaf(s[mt][nt][half * 2 + 1], scale_log2, -ms));
        s[mt][nt][half * 2] = p0;
        s[mt][nt][half * 2 + 1] = p1;
        sum += p0 + p1;
      }
      acc.l[mt][half] = acc.l[mt][half] * corr + sum;
      corr_rows[mt][half] = corr;
    }
  }
  bool rescale = false;
#pragma unroll
  for (int mt = 0; mt < Tr::kMTiles; ++mt) rescale |= corr_rows[mt][0] != 1.f || corr_rows[mt][1] != 1.f;
  if (__any_sync(0xffffffffu, rescale)) {
#pragma unroll
    for (int mt = 0; mt < Tr::kMTiles; ++mt)
#pragma unroll
      for (int dt = 0; dt < Tr::kDTiles; ++dt) {
        acc.o[mt][dt][0] *= corr_rows[mt][0];
        acc.o[mt][dt][1] *= corr_rows[mt][0];
        acc.o[mt][dt][2] *= corr_rows[mt][1];
        acc.o[mt][dt][3] *= corr_rows[mt][1];
      }
  }
}

// The pipeline state of one work item's main loop and the step that consumes one KV tile.
template <class Tr>
struct MainLoop {
  using T = typename Tr::T;
  const BlockSparseParams& p;
  const RowWork<Tr>& w;
  uint32_t sq_base;
  T* skv;
  int num_tiles, tid, lane, wrow;
  int key_cur, key_next;  // first keys of tiles t and t + 1

  // Consumes tile t. One barrier per tile: after it, tile t has landed for every thread and every warp is
  // done with tile t - 1, whose stage then receives tile t + 1 (loads in flight during this tile's math).
  // kPartial: the tile belongs to a partial block and the predicate applies; otherwise only the sequence
  // tail is masked (a separate instantiation keeps the predicate's registers out of the full-block loop;
  // full blocks of gathered calls hold no pad slot, so they need nothing more).
  template <bool kPartial>
  __device__ __forceinline__ void step(int t, Accumulators<Tr>& acc) {
    cp_async_wait<0>();
    __syncthreads();
    if (t + 1 < num_tiles) {
      T* sk_next = skv + ((t + 1) & 1) * 2 * Tr::kKvElems;
      load_rows<Tr, Tr::kKvTile>(sk_next, w.k, w.v, sk_next + Tr::kKvElems, key_next, p.Lp, w.ld, w.perm, tid);
      cp_async_commit();
      if constexpr (Tr::kGathered) write_key_codes<Tr>(p, w, key_next, (t + 1) & 1, tid);
    }
    const int key_after = t + 2 < num_tiles ? tile_key0(w, t + 2) : 0;  // in flight during this tile

    const T* sk = skv + (t & 1) * 2 * Tr::kKvElems;
    const uint32_t sk_base = smem_addr(sk), sv_base = smem_addr(sk + Tr::kKvElems);

    // S = Q Kᵀ for the warp's rows and the tile's 64 keys.
    float s[Tr::kMTiles][Tr::kNTiles][4];
#pragma unroll
    for (int mt = 0; mt < Tr::kMTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < Tr::kNTiles; ++nt) s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < Tr::kHD / 16; ++kk) {
      uint32_t a[Tr::kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < Tr::kMTiles; ++mt) {
        ldmatrix_x4(a[mt], sq_base + 2 * swizzle<Tr::kHD>(wrow + mt * 16 + (lane & 15), kk * 2 + (lane >> 4)));
      }
#pragma unroll
      for (int np = 0; np < Tr::kNTiles / 2; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, sk_base + 2 * swizzle<Tr::kHD>(np * 16 + ((lane >> 4) << 3) + (lane & 7),
                                                      kk * 2 + ((lane >> 3) & 1)));
#pragma unroll
        for (int mt = 0; mt < Tr::kMTiles; ++mt) {
          Mma<T>::mma(s[mt][2 * np], a[mt], b[0], b[1]);
          Mma<T>::mma(s[mt][2 * np + 1], a[mt], b[2], b[3]);
        }
      }
    }

    if (kPartial) {
      apply_mask<Tr>(s, p, w, w.q0 + wrow, key_cur, t & 1, true, lane);
    } else if (key_cur + Tr::kKvTile > p.Lp) {
      const int c = lane & 3;
#pragma unroll
      for (int nt = 0; nt < Tr::kNTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          if (key_cur + nt * 8 + 2 * c + e >= p.Lp) {
#pragma unroll
            for (int mt = 0; mt < Tr::kMTiles; ++mt) s[mt][nt][e] = s[mt][nt][2 + e] = -INFINITY;
          }
        }
    }

    softmax_update<Tr>(s, acc, p.scale_log2);

    // O += P V, P from registers (the S accumulator layout is the A fragment layout of m16n8k16).
#pragma unroll
    for (int kk = 0; kk < Tr::kKvTile / 16; ++kk) {
      uint32_t pa[Tr::kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < Tr::kMTiles; ++mt) {
        pa[mt][0] = Mma<T>::pack(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pa[mt][1] = Mma<T>::pack(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pa[mt][2] = Mma<T>::pack(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pa[mt][3] = Mma<T>::pack(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < Tr::kHD / 16; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, sv_base + 2 * swizzle<Tr::kHD>(kk * 16 + (((lane >> 3) & 1) << 3) + (lane & 7),
                                                            dp * 2 + (lane >> 4)));
#pragma unroll
        for (int mt = 0; mt < Tr::kMTiles; ++mt) {
          Mma<T>::mma(acc.o[mt][2 * dp], pa[mt], b[0], b[1]);
          Mma<T>::mma(acc.o[mt][2 * dp + 1], pa[mt], b[2], b[3]);
        }
      }
    }
    key_cur = key_next;
    key_next = key_after;
  }
};

// Runs the row's key tiles into `acc`: partial blocks first (predicate applied when there is one), then
// full blocks. The caller has issued (not committed) the Q tile's cp.async into sq; the first commit group
// here carries Q and the first K/V tile. Ends with all copies drained and a barrier, so the caller may
// reuse shared memory.
template <class Tr>
__device__ __forceinline__ void mainloop_mma_sync(const BlockSparseParams& p, const RowWork<Tr>& w,
                                                  const typename Tr::T* sq, typename Tr::T* skv,
                                                  Accumulators<Tr>& acc) {
  const int tid = threadIdx.x;
#pragma unroll
  for (int mt = 0; mt < Tr::kMTiles; ++mt) {
    acc.m[mt][0] = acc.m[mt][1] = -INFINITY;
    acc.l[mt][0] = acc.l[mt][1] = 0.f;
#pragma unroll
    for (int dt = 0; dt < Tr::kDTiles; ++dt) acc.o[mt][dt][0] = acc.o[mt][dt][1] = acc.o[mt][dt][2] = acc.o[mt][dt][3] = 0.f;
  }
  MainLoop<Tr> ml{p, w, smem_addr(sq), skv, (w.np + w.nf) * Tr::kSubTiles, tid, tid & 31,
                  (tid >> 5) * Tr::kMTiles * 16, 0, 0};
  ml.key_cur = ml.num_tiles > 0 ? tile_key0(w, 0) : 0;
  ml.key_next = ml.num_tiles > 1 ? tile_key0(w, 1) : 0;
  if (ml.num_tiles > 0) {
    load_rows<Tr, Tr::kKvTile>(skv, w.k, w.v, skv + Tr::kKvElems, ml.key_cur, p.Lp, w.ld, w.perm, tid);
    if constexpr (Tr::kGathered) write_key_codes<Tr>(p, w, ml.key_cur, 0, tid);
  }
  cp_async_commit();
  const int partial_tiles = p.pred_kind != kPredNone ? w.np * Tr::kSubTiles : 0;
  int t = 0;
  for (; t < partial_tiles; ++t) ml.template step<true>(t, acc);
  for (; t < ml.num_tiles; ++t) ml.template step<false>(t, acc);
  cp_async_wait<0>();
  __syncthreads();
}

}  // namespace vdit::attn::cuda_bs
