// block_sparse_attention_cuda in builds without CUDA: says what is missing. (DeviceBlockLayout::upload
// fails on its own there: DeviceBuffer reports `unsupported`.)
#include "attention/cuda/block_sparse_cuda.h"

namespace vdit::attn {

bool block_sparse_wgmma_available() { return false; }

Status block_sparse_attention_cuda(const DeviceQKV&, const DeviceBlockLayout&, const DeviceSparseEpilogue&,
                                   const BlockSparseOptions&) {
  return unsupported("block-sparse CUDA attention needs a vdit build with CUDA (configure with -DVDIT_CUDA=ON "
                     "and nvcc on the PATH) and a GPU; use block_sparse_attention_cpu otherwise");
}

}  // namespace vdit::attn
