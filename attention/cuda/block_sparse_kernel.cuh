// Internal to attention/cuda: the block-sparse forward kernel around a main loop (work item → head and
// query block, Q tile load through the permutation, normalization, Re-ttention epilogue, scatter of out
// and LSE to the original order) and its launch template. The main loop is mma.sync (block_sparse_mainloop_
// sm80.cuh) or wgmma (block_sparse_mainloop_sm90.cuh), chosen by the traits. Included once per (head dim,
// dtype) .cu file.
#pragma once

#include <cuda_runtime.h>

#include "attention/cuda/block_sparse_mainloop_sm80.cuh"
#include "attention/cuda/block_sparse_mainloop_sm90.cuh"
#include "dit/core/check_cuda.h"

namespace vdit::attn::cuda_bs {

// One CTA per work item; blockIdx.x follows the layout's order (p.items), so the hardware block scheduler
// hands out rows head-major and longest-first within a head.
template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kMinBlocksPerSm)
    block_sparse_fwd_kernel(const __grid_constant__ BlockSparseParams p) {
  using T = typename Tr::T;
  extern __shared__ __align__(1024) unsigned char smem_raw[];  // 1024: wgmma swizzle atoms
  T* sq = reinterpret_cast<T*>(smem_raw);  // [kRowsQ, HD] swizzled
  T* skv = sq + Tr::kQElems;               // 2 stages × (K [64, HD], V [64, HD])

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int item = p.items ? __ldg(p.items + blockIdx.x) : static_cast<int>(blockIdx.x);
  const int h = item / p.nq, qb = item % p.nq;
  const int r = (p.head_shared ? 0 : h) * p.nq + qb;
  const int64_t ld = static_cast<int64_t>(p.NH) * Tr::kHD;

  RowWork<Tr> w;
  w.k = static_cast<const T*>(p.k) + static_cast<int64_t>(h) * Tr::kHD;
  w.v = static_cast<const T*>(p.v) + static_cast<int64_t>(h) * Tr::kHD;
  w.perm = p.perm ? p.perm + (p.perm_per_head ? static_cast<int64_t>(h) * p.Lp : 0) : nullptr;
  if constexpr (Tr::kGathered) {
    // The query rows' selection words (chunk rule; zero past Lp) for the masked tiles; the main loop's first
    // barrier publishes them.
    w.ssel = reinterpret_cast<uint32_t*>(skv + 4 * Tr::kKvElems);
    w.scode = reinterpret_cast<uint8_t*>(w.ssel + Tr::kRowsQ * Tr::kSelWords);
    if (p.pred_kind == kPredChunkMask) {
      const uint32_t* sel = p.select + static_cast<int64_t>(h) * p.Lp * p.select_words;
      for (int e = tid; e < Tr::kRowsQ * Tr::kSelWords; e += Tr::kThreads) {
        const int row = e / Tr::kSelWords, word = e % Tr::kSelWords, qi = qb * Tr::kBlock + row;
        w.ssel[e] = qi < p.Lp && word < p.select_words ? __ldg(sel + static_cast<int64_t>(qi) * p.select_words + word)
                                                      : 0u;
      }
    }
  }
  const int64_t f0 = __ldg(p.full_ptr + r), f1 = __ldg(p.full_ptr + r + 1);
  const int64_t p0 = __ldg(p.part_ptr + r), p1 = __ldg(p.part_ptr + r + 1);
  w.part = p.part_idx + p0;
  w.np = static_cast<int>(p1 - p0);
  w.full = p.full_idx + f0;
  w.nf = static_cast<int>(f1 - f0);
  w.q0 = qb * Tr::kBlock;
  w.ld = ld;

  const T* qh = static_cast<const T*>(p.q) + static_cast<int64_t>(h) * Tr::kHD;
  load_rows<Tr, Tr::kRowsQ>(sq, qh, nullptr, nullptr, w.q0, p.Lp, ld, w.perm, tid);

  Accumulators<Tr> acc;
  if constexpr (Tr::kWgmma) {
#if VDIT_BS_WGMMA
    mainloop_wgmma<Tr>(p, w, sq, skv, acc);
#else
    __trap();  // never launched: the host checks block_sparse_wgmma_compiled() first
#endif
  } else {
    mainloop_mma_sync<Tr>(p, w, sq, skv, acc);
  }

  // Epilogue: out = rho · O / l + R, scattered to the original token order (pad slots are not written);
  // LSE = ln(l) + m·scale.
  const int g = lane >> 2, c = lane & 3;
  const int wrow = warp * Tr::kMTiles * 16;
  T* out = static_cast<T*>(p.out) + static_cast<int64_t>(h) * Tr::kHD;
#pragma unroll
  for (int mt = 0; mt < Tr::kMTiles; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float l = acc.l[mt][half];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const int n = w.q0 + wrow + mt * 16 + g + half * 8;
      if (n >= p.Lp) continue;
      const int orig = w.perm ? __ldg(w.perm + n) : n;
      if (orig < 0) continue;  // pad slot
      const float rho = p.rho ? __ldg(p.rho + static_cast<int64_t>(h) * p.L + orig) : 1.f;
      const float f = l > 0.f ? rho / l : 0.f;
      T* orow = out + static_cast<int64_t>(orig) * ld;
      const float* rrow = p.residual ? p.residual + static_cast<int64_t>(orig) * ld + static_cast<int64_t>(h) * Tr::kHD
                                     : nullptr;
#pragma unroll
      for (int dt = 0; dt < Tr::kDTiles; ++dt) {
        const int d = dt * 8 + 2 * c;
        float v0 = acc.o[mt][dt][half * 2] * f, v1 = acc.o[mt][dt][half * 2 + 1] * f;
        if (rrow) {
          const float2 rv = __ldg(reinterpret_cast<const float2*>(rrow + d));
          v0 += rv.x;
          v1 += rv.y;
        }
        *reinterpret_cast<uint32_t*>(orow + d) = Mma<T>::pack(v0, v1);
      }
      if (p.lse && c == 0) {
        p.lse[static_cast<int64_t>(h) * p.L + orig] =
            l > 0.f ? (acc.m[mt][half] * p.scale_log2 + __log2f(l)) * 0.6931471805599453f : -INFINITY;
      }
    }
  }
}

template <class Tr>
Status launch_block_sparse(const BlockSparseParams& p, void* stream) {
  if (p.block != Tr::kBlock) {
    return internal_error(strfmt("block-sparse kernel instance for block %d called with block %d", Tr::kBlock, p.block));
  }
  if (p.num_items == 0) return Status::ok();
  auto kernel = block_sparse_fwd_kernel<Tr>;
  VDIT_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Tr::kSmemBytes));
  kernel<<<p.num_items, Tr::kThreads, Tr::kSmemBytes, static_cast<cudaStream_t>(stream)>>>(p);
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

// Dispatch over the block sizes, main loops and call kinds (gathered or not) of one (head dim, dtype).
template <int HD, class T>
Status launch_block_sparse_any_block(const BlockSparseParams& p, bool wgmma, void* stream) {
  const bool gathered = p.pred_kind == kPredPadMask || p.pred_kind == kPredChunkMask;
  if (wgmma) {
    if (gathered) {
      if (p.block == 128) return launch_block_sparse<Traits<HD, 128, T, true, true>>(p, stream);
      if (p.block == 64) return launch_block_sparse<Traits<HD, 64, T, true, true>>(p, stream);
    } else {
      if (p.block == 128) return launch_block_sparse<Traits<HD, 128, T, true>>(p, stream);
      if (p.block == 64) return launch_block_sparse<Traits<HD, 64, T, true>>(p, stream);
    }
  } else {
    if (gathered) {
      if (p.block == 128) return launch_block_sparse<Traits<HD, 128, T, false, true>>(p, stream);
      if (p.block == 64) return launch_block_sparse<Traits<HD, 64, T, false, true>>(p, stream);
    } else {
      if (p.block == 128) return launch_block_sparse<Traits<HD, 128, T>>(p, stream);
      if (p.block == 64) return launch_block_sparse<Traits<HD, 64, T>>(p, stream);
    }
  }
  return unsupported(strfmt("block-sparse CUDA attention: block %d (supported: 64, 128)", p.block));
}

}  // namespace vdit::attn::cuda_bs
