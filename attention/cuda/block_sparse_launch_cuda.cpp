// choose_wgmma and launch_instance (block_sparse_launch.h).
#include "attention/cuda/block_sparse_launch.h"

namespace vdit::attn::cuda_bs {

Result<bool> choose_wgmma(const BlockSparseOptions& options, const char* who) {
  if (options.loop == BlockSparseLoop::wgmma && !block_sparse_wgmma_available()) {
    return unsupported(strfmt("%s: the wgmma main loop needs device code built for sm_90a (configure with "
                              "-DCMAKE_CUDA_ARCHITECTURES=90a); use the mma.sync loop otherwise",
                              who));
  }
  return options.loop == BlockSparseLoop::wgmma ||
         (options.loop == BlockSparseLoop::automatic && block_sparse_wgmma_available());
}

Status launch_instance(const BlockSparseParams& p, const DeviceQKV& qkv, bool wgmma) {
  const bool bf16 = qkv.dtype == DeviceDType::bf16;
  if (qkv.HD == 64) {
    return bf16 ? block_sparse_fwd_hd64_bf16(p, wgmma, qkv.stream) : block_sparse_fwd_hd64_f16(p, wgmma, qkv.stream);
  }
  return bf16 ? block_sparse_fwd_hd128_bf16(p, wgmma, qkv.stream) : block_sparse_fwd_hd128_f16(p, wgmma, qkv.stream);
}

}  // namespace vdit::attn::cuda_bs
