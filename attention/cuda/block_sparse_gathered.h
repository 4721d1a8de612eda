// The block-sparse CUDA kernel over a GATHERED token order with pad slots and an optional chunk rule: the GPU
// twin of gathered_attention_cpu (attention/methods/vmoba_kernel.h), for the methods whose kept set is not a
// BlockLayout — DraftAttention on grids its pooling does not tile (edge regions padded to whole blocks) and
// VMoBA (token-granular chunk selection over a box-major rearrangement). Same kernel and main loops as
// block_sparse_attention_cuda; only the row/key validity and the element rule differ. Everything here is
// device memory the caller owns (planners build it on the GPU, per call if they like); nothing is copied.
// Full blocks cost what they cost in block_sparse_attention_cuda (no per-element work); masked blocks add a
// per-tile key mask (pads) and, with the chunk rule, a bit test per element. Implemented in
// block_sparse_gathered_cuda.cpp; builds without CUDA return `unsupported` (block_sparse_gathered_no_cuda.cpp).
#pragma once

#include <cstdint>

#include "attention/cuda/block_sparse_cuda.h"
#include "attention/device_attention.h"
#include "dit/core/status.h"

namespace vdit::attn {

// Device pointers and sizes of one gathered call. Positions n in [0, positions) are cut into blocks of
// `block`; nq = ceil(positions / block) query blocks, the same number of key blocks.
struct DeviceGatheredView {
  int block = 128;                // 64 or 128
  int64_t positions = 0;          // Lp >= L (the call's tokens)
  const int32_t* slots = nullptr; // [Lp] original token at position n, or -1 for a pad slot; every token of
                                  // [0, L) appears exactly once. Shared by all heads.
  bool head_shared = false;       // one set of lists for all heads (rows = nq), else rows = NH · nq
  // CSR over rows r = head_row · nq + qb (head_row = 0 when head_shared). Sorted, disjoint key-block ids.
  const int64_t* full_ptr = nullptr;  // [rows + 1]
  const int32_t* full_idx = nullptr;  // blocks computed whole: must hold no pad slot and no chunk exclusion
                                      // (null only when every full list is empty; likewise part_idx)
  const int64_t* part_ptr = nullptr;  // [rows + 1]
  const int32_t* part_idx = nullptr;  // masked blocks: pad keys dropped, then the chunk rule if present
  // Work order: NH · nq items (h · nq + qb), e.g. longest row first; null = identity order.
  const int32_t* items = nullptr;
  // Optional chunk rule of masked blocks (VMoBA): key position j is kept for query position i of head h iff
  // bit chunk_of[j] of select[(h · Lp + i) · select_words + chunk_of[j] / 32] is set (bit chunk % 32).
  const int32_t* chunk_of = nullptr;  // [Lp] chunk id of each key position (pad slots: any value)
  const uint32_t* select = nullptr;   // [NH, Lp, select_words]
  int select_words = 0;               // ceil(chunks / 32), at most 4 (128 chunks)
};

// out [L, NH, HD] and lse [NH, L] (may be null) in the ORIGINAL token order; q/k/v [L, NH, HD] as in
// block_sparse_attention_cuda (bf16/f16, HD 64/128, Lk == L, positions < 2^30). Pad positions are never attended and never
// written; a query whose row keeps no key gets out = 0 and lse = -inf. Asynchronous on qkv.stream.
// The pointers are only checked for null/size consistency; the lists' contents are the caller's contract
// (a debug build may validate them with block_sparse_gathered_validate).
Status block_sparse_gathered_cuda(const DeviceQKV& qkv, const DeviceGatheredView& view,
                                  const BlockSparseOptions& options = {});

// Copies the view's lists back and checks them (sorted, disjoint, in range, slots a permutation plus pads,
// no pad in a full block). Synchronizes; for tests and debugging.
Status block_sparse_gathered_validate(const DeviceQKV& qkv, const DeviceGatheredView& view);

}  // namespace vdit::attn
