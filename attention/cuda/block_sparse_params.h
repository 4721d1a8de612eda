// Internal to attention/cuda: the block-sparse kernel's parameter struct (one POD of raw device pointers,
// sizes and the element predicate, filled by block_sparse_cuda.cpp) and the entry points of the compiled
// instances, one per (head dim, dtype) in block_sparse_hd<HD>_<dtype>.cu, each covering blocks 64 and 128
// and both main loops.
#pragma once

#include <cstdint>

#include "dit/core/status.h"

namespace vdit::attn::cuda_bs {

// kPredPadMask / kPredChunkMask: gathered calls (block_sparse_gathered.h) only. Masked (partial) blocks drop
// pad keys (perm[j] < 0), and under kPredChunkMask also the keys the chunk rule excludes.
enum PredicateKind : int {
  kPredNone = 0,
  kPredBand = 1,
  kPredFrameBand = 2,
  kPredPadMask = 3,
  kPredChunkMask = 4,
};

struct BlockSparseParams {
  // Tensors, original token order. q, k, v, out: [L, NH, HD] of the io dtype.
  const void* q;
  const void* k;
  const void* v;
  void* out;
  float* lse;             // [NH, L] natural log, or null
  const float* rho;       // [NH, L] or null
  const float* residual;  // [L, NH, HD] f32 or null
  int L;                  // tokens (< 2^30)
  int Lp;                 // positions of the method order (≥ L; = L except in gathered calls, where the
                          // positions past the tokens are pad slots, perm[n] = -1)
  int NH;
  int block;              // B of the layout (must equal the instance's)
  int nq;                 // query blocks ⌈Lp / B⌉
  float scale_log2;       // softmax scale · log2(e)
  // Layout (device copies, see DeviceBlockLayout).
  const int64_t* full_ptr;  // [rows + 1]
  const int32_t* full_idx;
  const int64_t* part_ptr;  // [rows + 1]
  const int32_t* part_idx;
  int head_shared;          // 1: rows are (qb), else (head · nq + qb)
  const int32_t* perm;      // null, [Lp] or [NH, Lp]: x_perm[n] = x[perm[n]]; -1 = pad slot (gathered calls
                            // only: a pad row loads as zeros, is never attended and never written)
  int perm_per_head;
  const int32_t* items;     // [num_items] head · nq + qb, in launch order; null = blockIdx order
  int num_items;
  // Element predicate of partial blocks (ElementPredicate with video_end resolved and widths clamped to L).
  int pred_kind;
  int pred_half_width;
  int pred_frame_tokens;
  int pred_video_begin;
  int pred_video_end;
  int pred_original_order;
  // kPredChunkMask: key position j is kept for query position i of head h iff bit chunk_of[j] of
  // select[(h · Lp + i) · select_words + chunk_of[j] / 32] is set; chunk ids < 128.
  const int32_t* chunk_of;  // [Lp]
  const uint32_t* select;   // [NH, Lp, select_words]
  int select_words;         // 1..4
};

// Launch on `stream` (cudaStream_t) with the mma.sync or (wgmma = true) the wgmma main loop. Return
// `unsupported` for a block size the instance does not have.
Status block_sparse_fwd_hd64_bf16(const BlockSparseParams& p, bool wgmma, void* stream);
Status block_sparse_fwd_hd64_f16(const BlockSparseParams& p, bool wgmma, void* stream);
Status block_sparse_fwd_hd128_bf16(const BlockSparseParams& p, bool wgmma, void* stream);
Status block_sparse_fwd_hd128_f16(const BlockSparseParams& p, bool wgmma, void* stream);
// Whether the device code was compiled for sm_90a (the wgmma main loop exists).
Status block_sparse_wgmma_compiled(bool* compiled);

}  // namespace vdit::attn::cuda_bs
