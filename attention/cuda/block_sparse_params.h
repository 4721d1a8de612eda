// Internal to attention/cuda: the block-sparse kernel's parameter struct (one POD of raw device pointers,
// sizes and the element predicate, filled by block_sparse_cuda.cpp) and the entry points of the compiled
// instances, one per (head dim, dtype) in block_sparse_hd<HD>_<dtype>.cu, each covering blocks 64 and 128
// and both main loops.
#pragma once

#include <cstdint>

#include "dit/core/status.h"

namespace vdit::attn::cuda_bs {

enum PredicateKind : int { kPredNone = 0, kPredBand = 1, kPredFrameBand = 2 };

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
  int NH;
  int block;              // B of the layout (must equal the instance's)
  int nq;                 // query blocks ⌈L / B⌉
  float scale_log2;       // softmax scale · log2(e)
  // Layout (device copies, see DeviceBlockLayout).
  const int64_t* full_ptr;  // [rows + 1]
  const int32_t* full_idx;
  const int64_t* part_ptr;  // [rows + 1]
  const int32_t* part_idx;
  int head_shared;          // 1: rows are (qb), else (head · nq + qb)
  const int32_t* perm;      // null, [L] or [NH, L]: x_perm[n] = x[perm[n]]
  int perm_per_head;
  const int32_t* items;     // [num_items] head · nq + qb, in launch order
  int num_items;
  // Element predicate of partial blocks (ElementPredicate with video_end resolved and widths clamped to L).
  int pred_kind;
  int pred_half_width;
  int pred_frame_tokens;
  int pred_video_begin;
  int pred_video_end;
  int pred_original_order;
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
