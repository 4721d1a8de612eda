// block_sparse_gathered.h in builds without CUDA: says what is missing.
#include "attention/cuda/block_sparse_gathered.h"

namespace vdit::attn {
namespace {
Status no_cuda() {
  return unsupported("block-sparse gathered CUDA attention needs a vdit build with CUDA (configure with -DVDIT_CUDA=ON "
                     "and nvcc on the PATH) and a GPU; use gathered_attention_cpu otherwise");
}
}  // namespace

Status block_sparse_gathered_cuda(const DeviceQKV&, const DeviceGatheredView&, const BlockSparseOptions&) {
  return no_cuda();
}
Status block_sparse_gathered_validate(const DeviceQKV&, const DeviceGatheredView&) { return no_cuda(); }

}  // namespace vdit::attn
