// Block-sparse attention kernel instances for head dim 64, bf16 io: blocks 64 and 128, mma.sync and
// wgmma main loops (one .cu per (head dim, dtype) keeps the instance set closed and compiling in parallel).
#include "attention/cuda/block_sparse_kernel.cuh"

namespace vdit::attn::cuda_bs {

Status block_sparse_fwd_hd64_bf16(const BlockSparseParams& p, bool wgmma, void* stream) {
  return launch_block_sparse_any_block<64, __nv_bfloat16>(p, wgmma, stream);
}

}  // namespace vdit::attn::cuda_bs
