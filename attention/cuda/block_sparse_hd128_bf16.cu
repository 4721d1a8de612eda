// Block-sparse attention kernel instances for head dim 128, bf16 io: blocks 64 and 128, mma.sync and
// wgmma main loops (one .cu per (head dim, dtype) keeps the instance set closed and compiling in parallel).
#include "attention/cuda/block_sparse_kernel.cuh"

namespace vdit::attn::cuda_bs {

// What block_sparse_wgmma_compiled() reads back: whether the device code was built for sm_90a.
__device__ int g_wgmma_compiled = VDIT_BS_WGMMA;

Status block_sparse_wgmma_compiled(bool* compiled) {
  int v = 0;
  VDIT_CHECK(cudaMemcpyFromSymbol(&v, g_wgmma_compiled, sizeof(int)));
  *compiled = v != 0;
  return Status::ok();
}

Status block_sparse_fwd_hd128_bf16(const BlockSparseParams& p, bool wgmma, void* stream) {
  return launch_block_sparse_any_block<128, __nv_bfloat16>(p, wgmma, stream);
}

}  // namespace vdit::attn::cuda_bs
