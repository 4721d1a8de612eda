// Block-sparse flash-attention forward on the GPU: the device-resident copy of a BlockLayout and the call
// that runs the kernel on it. Same contract as block_sparse_attention_cpu (attention/block_sparse_cpu.h):
// outputs and LSE in the ORIGINAL token order, partial blocks filtered by the layout's ElementPredicate,
// the sequence tail clipped, optional Re-ttention epilogue. No CUDA headers here; the kernel is in
// block_sparse_kernel.cuh with two main loops (mma.sync, and wgmma for sm_90a builds; one .cu per (head dim,
// dtype)). Permutations are applied inside the kernel (gathered loads, scattered stores), not as a separate
// pass. Builds without CUDA return `unsupported`.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/block_layout.h"
#include "attention/device_attention.h"
#include "dit/core/device_buffer.h"
#include "dit/core/status.h"

namespace vdit::attn {

// Optional Re-ttention epilogue on device memory: out = rho·O_sparse + residual (original token order).
// `residual` is f32 (the head-space cache Re-ttention keeps), whatever the io dtype of the call.
struct DeviceSparseEpilogue {
  const float* rho = nullptr;       // [NH, L] f32, or null (ρ = 1)
  const float* residual = nullptr;  // [L, NH, HD] f32, or null (R = 0)
};

// A BlockLayout uploaded to the GPU (CSR lists, permutation) together with the order in which the kernel
// visits work items (head, query block): head-major, and longest list first within each head, so the
// last CTAs of a launch run the shortest rows and the CTAs in flight share one head's K/V in L2.
// Upload once; update() re-uploads a new layout (per-step layouts) reusing the buffers when they fit.
// A DeviceBlockLayout may be used by several launches in flight (it is read-only on the device).
class DeviceBlockLayout {
 public:
  DeviceBlockLayout() = default;
  DeviceBlockLayout(DeviceBlockLayout&&) noexcept = default;
  DeviceBlockLayout& operator=(DeviceBlockLayout&&) noexcept = default;

  // Validates `layout` (BlockLayout::validate) and copies it to the GPU (synchronously).
  static Result<DeviceBlockLayout> upload(const BlockLayout& layout);
  Status update(const BlockLayout& layout);

  bool empty() const { return seq_len_ == 0; }
  int block() const { return block_; }
  int64_t seq_len() const { return seq_len_; }
  int num_heads() const { return num_heads_; }
  bool head_shared() const { return head_shared_; }
  int64_t num_q_blocks() const { return num_q_blocks_; }
  const ElementPredicate& predicate() const { return predicate_; }
  bool has_perm() const { return perm_kind_ != 0; }
  bool perm_per_head() const { return perm_kind_ == 2; }
  int64_t num_items() const { return num_items_; }
  // Listed blocks (full + partial) × their clipped size (rows × keys), summed over all heads: the element
  // count of FlexAttention-style FLOP accounting (4 · this · HD FLOPs per call).
  double listed_elements() const { return listed_elements_; }
  // Listed blocks / (NH · nQ · nK), as BlockLayout::block_density().
  double block_density() const { return block_density_; }
  int64_t max_row_blocks() const { return max_row_blocks_; }

  // Device pointers (for the launcher).
  const int64_t* full_ptr() const { return full_ptr_.as<int64_t>(); }
  const int32_t* full_idx() const { return full_idx_.as<int32_t>(); }
  const int64_t* part_ptr() const { return part_ptr_.as<int64_t>(); }
  const int32_t* part_idx() const { return part_idx_.as<int32_t>(); }
  const int32_t* perm() const { return perm_.as<int32_t>(); }
  const int32_t* items() const { return items_.as<int32_t>(); }

 private:
  DeviceBuffer full_ptr_, full_idx_, part_ptr_, part_idx_, perm_, items_;
  int block_ = 128;
  int64_t seq_len_ = 0;
  int num_heads_ = 0;
  bool head_shared_ = true;
  int64_t num_q_blocks_ = 0;
  ElementPredicate predicate_;
  int perm_kind_ = 0;  // 0 none, 1 shared [L], 2 per head [NH, L]
  int64_t num_items_ = 0;
  double listed_elements_ = 0;
  double block_density_ = 0;
  int64_t max_row_blocks_ = 0;
};

// Work order of a layout's items (head · nQ + query block), as upload() computes it: head-major, longest
// row first within a head (ties by query block). Exposed for tests.
std::vector<int32_t> block_sparse_work_order(const BlockLayout& layout);

// Which main loop runs the key tiles. `automatic` picks the fastest one this build has: wgmma when the
// device code was built for sm_90a, else mma.sync.
enum class BlockSparseLoop : uint8_t {
  automatic,
  mma_sync,  // FA2-style mma.sync m16n8k16 (any sm_80+ build)
  wgmma,     // warpgroup MMAs (needs device code built for sm_90a: CMAKE_CUDA_ARCHITECTURES=90a)
};

struct BlockSparseOptions {
  BlockSparseLoop loop = BlockSparseLoop::automatic;
};

// Whether the wgmma main loop was compiled (sm_90a device code); false without CUDA or a GPU.
bool block_sparse_wgmma_available();

// Runs the block-sparse kernel on `qkv` (q, k, v, out [L, NH, HD] in bf16 or f16; lse [NH, L] f32 or null;
// Lk must equal L) with `layout` (uploaded for the same L and NH) and the optional epilogue, on qkv.stream.
// Supported: HD 64 and 128, block 64 and 128, bf16 and f16, L < 2^30. Asynchronous: errors of the launch
// itself are returned; kernel faults surface at the next synchronizing call.
Status block_sparse_attention_cuda(const DeviceQKV& qkv, const DeviceBlockLayout& layout,
                                   const DeviceSparseEpilogue& epilogue = {}, const BlockSparseOptions& options = {});

}  // namespace vdit::attn
