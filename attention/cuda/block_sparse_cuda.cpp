// block_sparse_attention_cuda: checks a call against its uploaded layout, fills the kernel's parameter
// struct and picks the compiled instance (head dim × dtype; the instance picks the block size). The one
// place that answers "supported?" for the block-sparse CUDA kernel, with the reason when it is not.
#include <algorithm>
#include <cmath>

#include "attention/cuda/block_sparse_cuda.h"
#include "attention/cuda/block_sparse_launch.h"
#include "attention/cuda/block_sparse_params.h"
#include "dit/core/device_buffer.h"

namespace vdit::attn {
namespace {

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

Status check_call(const DeviceQKV& qkv, const DeviceBlockLayout& layout) {
  if (layout.empty()) return invalid_argument("block-sparse CUDA attention: the layout was not uploaded");
  if (!qkv.q || !qkv.k || !qkv.v || !qkv.out) {
    return invalid_argument("block-sparse CUDA attention: null q/k/v/out device pointer");
  }
  if (qkv.L != layout.seq_len() || qkv.NH != layout.num_heads()) {
    return invalid_argument(strfmt("block-sparse CUDA attention: the layout is for L=%lld NH=%d but the call has "
                                   "L=%lld NH=%d; upload the layout planned for this call",
                                   static_cast<long long>(layout.seq_len()), layout.num_heads(),
                                   static_cast<long long>(qkv.L), qkv.NH));
  }
  if (qkv.keys() != qkv.L) {
    return unsupported(strfmt("block-sparse CUDA attention: self-attention only (Lk=%lld differs from L=%lld)",
                              static_cast<long long>(qkv.keys()), static_cast<long long>(qkv.L)));
  }
  if (qkv.HD != 64 && qkv.HD != 128) {
    return unsupported(strfmt("block-sparse CUDA attention: head dim %d (supported: 64, 128)", qkv.HD));
  }
  if (!aligned16(qkv.q) || !aligned16(qkv.k) || !aligned16(qkv.v) || !aligned16(qkv.out)) {
    return invalid_argument("block-sparse CUDA attention: q/k/v/out must be 16-byte aligned");
  }
  const ElementPredicate& pr = layout.predicate();
  if (pr.kind == ElementPredicate::Kind::frame_band && pr.frame_tokens <= 0) {
    return invalid_argument("block-sparse CUDA attention: frame_band predicate with frame_tokens <= 0");
  }
  if (!(qkv.softmax_scale() > 0.f) || !std::isfinite(qkv.softmax_scale())) {
    return invalid_argument("block-sparse CUDA attention: the softmax scale must be positive and finite");
  }
  return Status::ok();
}

}  // namespace

bool block_sparse_wgmma_available() {
  static const bool available = [] {
    bool compiled = false;
    return cuda_device_count() > 0 && cuda_bs::block_sparse_wgmma_compiled(&compiled).is_ok() && compiled;
  }();
  return available;
}

Status block_sparse_attention_cuda(const DeviceQKV& qkv, const DeviceBlockLayout& layout,
                                   const DeviceSparseEpilogue& epilogue, const BlockSparseOptions& options) {
  VDIT_TRY(check_call(qkv, layout));
  VDIT_ASSIGN(const bool wgmma, cuda_bs::choose_wgmma(options, "block-sparse CUDA attention"));
  const int64_t L = layout.seq_len();
  const ElementPredicate& pr = layout.predicate();
  cuda_bs::BlockSparseParams p{};
  p.q = qkv.q;
  p.k = qkv.k;
  p.v = qkv.v;
  p.out = qkv.out;
  p.lse = qkv.lse;
  p.rho = epilogue.rho;
  p.residual = epilogue.residual;
  p.L = static_cast<int>(L);
  p.Lp = p.L;
  p.NH = qkv.NH;
  p.block = layout.block();
  p.nq = static_cast<int>(layout.num_q_blocks());
  p.scale_log2 = qkv.softmax_scale() * 1.4426950408889634f;
  p.full_ptr = layout.full_ptr();
  p.full_idx = layout.full_idx();
  p.part_ptr = layout.part_ptr();
  p.part_idx = layout.part_idx();
  p.head_shared = layout.head_shared() ? 1 : 0;
  p.perm = layout.has_perm() ? layout.perm() : nullptr;
  p.perm_per_head = layout.perm_per_head() ? 1 : 0;
  p.items = layout.items();
  p.num_items = static_cast<int>(layout.num_items());
  p.pred_kind = pr.kind == ElementPredicate::Kind::band         ? cuda_bs::kPredBand
                : pr.kind == ElementPredicate::Kind::frame_band ? cuda_bs::kPredFrameBand
                                                                : cuda_bs::kPredNone;
  p.pred_half_width = static_cast<int>(std::clamp<int64_t>(pr.half_width, 0, L));
  p.pred_frame_tokens = static_cast<int>(std::clamp<int64_t>(pr.frame_tokens, 1, L));
  p.pred_video_begin = static_cast<int>(std::clamp<int64_t>(pr.video_begin, 0, L));
  p.pred_video_end = static_cast<int>(pr.video_end < 0 ? L : std::clamp<int64_t>(pr.video_end, 0, L));
  p.pred_original_order = pr.original_order ? 1 : 0;

  return cuda_bs::launch_instance(p, qkv, wgmma);
}

}  // namespace vdit::attn
