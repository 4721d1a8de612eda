// Internal to attention/cuda: the two steps every host entry of the block-sparse kernel shares once its
// BlockSparseParams are filled — choosing the main loop, and calling the compiled instance of the call's
// (head dim, dtype). Used by block_sparse_cuda.cpp (BlockLayout calls) and block_sparse_gathered_cuda.cpp.
#pragma once

#include "attention/cuda/block_sparse_cuda.h"
#include "attention/cuda/block_sparse_params.h"
#include "attention/device_attention.h"
#include "dit/core/status.h"

namespace vdit::attn::cuda_bs {

// true = the wgmma loop. `automatic` takes wgmma where the build has it (H200, bf16, HD 128, block 128:
// ~450-530 TFLOP/s on computed blocks against ~315-335 for mma.sync); an explicit wgmma request on a build
// without sm_90a device code is `unsupported` (the message starts with `who`).
Result<bool> choose_wgmma(const BlockSparseOptions& options, const char* who);

// Runs the instance for qkv.HD (64 or 128, checked by the caller) and qkv.dtype on qkv.stream.
Status launch_instance(const BlockSparseParams& p, const DeviceQKV& qkv, bool wgmma);

}  // namespace vdit::attn::cuda_bs
