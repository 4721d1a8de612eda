// block_sparse_gathered_cuda: checks a gathered call (block_sparse_gathered.h), fills the block-sparse
// kernel's parameter struct (positions Lp, slots as a permutation with -1 pads, the pad / chunk masks of
// masked blocks) and runs the same compiled instances as block_sparse_attention_cuda. The validator copies
// the lists back and checks the contract on the host (tests, debugging).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "attention/cuda/block_sparse_gathered.h"
#include "attention/cuda/block_sparse_launch.h"
#include "attention/cuda/block_sparse_params.h"
#include "dit/core/check_cuda.h"

namespace vdit::attn {
namespace {

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

int64_t gathered_blocks(const DeviceGatheredView& view) { return (view.positions + view.block - 1) / view.block; }

Status check_gathered(const DeviceQKV& qkv, const DeviceGatheredView& view) {
  const char* what = "block-sparse gathered CUDA attention";
  if (!qkv.q || !qkv.k || !qkv.v || !qkv.out) return invalid_argument(strfmt("%s: null q/k/v/out device pointer", what));
  if (qkv.L < 1 || qkv.NH < 1) {
    return invalid_argument(strfmt("%s: L=%lld NH=%d (both must be positive)", what, static_cast<long long>(qkv.L),
                                   qkv.NH));
  }
  if (qkv.keys() != qkv.L) {
    return unsupported(strfmt("%s: self-attention only (Lk=%lld differs from L=%lld)", what,
                              static_cast<long long>(qkv.keys()), static_cast<long long>(qkv.L)));
  }
  if (qkv.HD != 64 && qkv.HD != 128) return unsupported(strfmt("%s: head dim %d (supported: 64, 128)", what, qkv.HD));
  if (!aligned16(qkv.q) || !aligned16(qkv.k) || !aligned16(qkv.v) || !aligned16(qkv.out)) {
    return invalid_argument(strfmt("%s: q/k/v/out must be 16-byte aligned", what));
  }
  if (!(qkv.softmax_scale() > 0.f) || !std::isfinite(qkv.softmax_scale())) {
    return invalid_argument(strfmt("%s: the softmax scale must be positive and finite", what));
  }
  if (view.block != 64 && view.block != 128) {
    return unsupported(strfmt("%s: block %d (supported: 64, 128)", what, view.block));
  }
  if (view.positions < qkv.L) {
    return invalid_argument(strfmt("%s: %lld positions for %lld tokens (every token needs a slot)", what,
                                   static_cast<long long>(view.positions), static_cast<long long>(qkv.L)));
  }
  if (view.positions >= (int64_t{1} << 30)) {
    return unsupported(strfmt("%s: %lld positions (the kernel indexes them with 32-bit integers; at most 2^30 - 1)",
                              what, static_cast<long long>(view.positions)));
  }
  if (static_cast<int64_t>(qkv.NH) * gathered_blocks(view) >= (int64_t{1} << 31)) {
    return unsupported(strfmt("%s: more than 2^31 work items (heads x query blocks)", what));
  }
  if (!view.slots) return invalid_argument(strfmt("%s: null slots", what));
  if (!view.full_ptr || !view.part_ptr) return invalid_argument(strfmt("%s: null full_ptr / part_ptr", what));
  if ((view.chunk_of == nullptr) != (view.select == nullptr)) {
    return invalid_argument(strfmt("%s: the chunk rule needs both chunk_of and select (or neither)", what));
  }
  if (view.select && (view.select_words < 1 || view.select_words > 4)) {
    return invalid_argument(strfmt("%s: select_words = %d (1 to 4: at most 128 chunks)", what, view.select_words));
  }
  return Status::ok();
}

}  // namespace

Status block_sparse_gathered_cuda(const DeviceQKV& qkv, const DeviceGatheredView& view,
                                  const BlockSparseOptions& options) {
  VDIT_TRY(check_gathered(qkv, view));
  VDIT_ASSIGN(const bool wgmma, cuda_bs::choose_wgmma(options, "block-sparse gathered CUDA attention"));
  const int64_t nq = gathered_blocks(view);
  cuda_bs::BlockSparseParams p{};
  p.q = qkv.q;
  p.k = qkv.k;
  p.v = qkv.v;
  p.out = qkv.out;
  p.lse = qkv.lse;
  p.rho = nullptr;
  p.residual = nullptr;
  p.L = static_cast<int>(qkv.L);
  p.Lp = static_cast<int>(view.positions);
  p.NH = qkv.NH;
  p.block = view.block;
  p.nq = static_cast<int>(nq);
  p.scale_log2 = qkv.softmax_scale() * 1.4426950408889634f;
  p.full_ptr = view.full_ptr;
  p.full_idx = view.full_idx;
  p.part_ptr = view.part_ptr;
  p.part_idx = view.part_idx;
  p.head_shared = view.head_shared ? 1 : 0;
  p.perm = view.slots;
  p.perm_per_head = 0;
  p.items = view.items;
  p.num_items = static_cast<int>(static_cast<int64_t>(qkv.NH) * nq);
  p.pred_kind = view.select ? cuda_bs::kPredChunkMask : cuda_bs::kPredPadMask;
  p.pred_frame_tokens = 1;
  p.pred_video_end = p.L;
  p.chunk_of = view.chunk_of;
  p.select = view.select;
  p.select_words = view.select ? view.select_words : 0;

  return cuda_bs::launch_instance(p, qkv, wgmma);
}

namespace {

template <class T>
Status fetch(std::vector<T>* dst, const T* src, int64_t n, const char* name) {
  dst->assign(static_cast<size_t>(std::max<int64_t>(n, 0)), T{});
  if (n <= 0) return Status::ok();
  if (!src) return invalid_argument(strfmt("gathered view: %s is null but %lld entries are listed", name,
                                           static_cast<long long>(n)));
  VDIT_CHECK(cudaMemcpy(dst->data(), src, static_cast<size_t>(n) * sizeof(T), cudaMemcpyDeviceToHost));
  return Status::ok();
}

}  // namespace

Status block_sparse_gathered_validate(const DeviceQKV& qkv, const DeviceGatheredView& view) {
  VDIT_TRY(check_gathered(qkv, view));
  VDIT_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(qkv.stream)));
  const int64_t L = qkv.L, Lp = view.positions, B = view.block, nq = gathered_blocks(view);
  const int NH = qkv.NH;
  const int64_t rows = (view.head_shared ? 1 : NH) * nq;
  std::vector<int32_t> slots;
  VDIT_TRY(fetch(&slots, view.slots, Lp, "slots"));
  std::vector<int32_t> seen(static_cast<size_t>(L), 0);
  for (int64_t n = 0; n < Lp; ++n) {
    const int32_t t = slots[static_cast<size_t>(n)];
    if (t < -1 || t >= L) return invalid_argument(strfmt("gathered view: slots[%lld] = %d is out of range", (long long)n, t));
    if (t >= 0 && seen[static_cast<size_t>(t)]++) {
      return invalid_argument(strfmt("gathered view: token %d has two slots", t));
    }
  }
  for (int64_t t = 0; t < L; ++t) {
    if (!seen[static_cast<size_t>(t)]) return invalid_argument(strfmt("gathered view: token %lld has no slot", (long long)t));
  }
  std::vector<uint8_t> has_pad(static_cast<size_t>(nq), 0);
  for (int64_t n = 0; n < Lp; ++n)
    if (slots[static_cast<size_t>(n)] < 0) has_pad[static_cast<size_t>(n / B)] = 1;

  std::vector<int64_t> fptr, pptr;
  VDIT_TRY(fetch(&fptr, view.full_ptr, rows + 1, "full_ptr"));
  VDIT_TRY(fetch(&pptr, view.part_ptr, rows + 1, "part_ptr"));
  for (const auto* ptr : {&fptr, &pptr}) {
    if ((*ptr)[0] != 0) return invalid_argument("gathered view: a CSR pointer array does not start at 0");
    for (int64_t r = 0; r < rows; ++r) {
      if ((*ptr)[static_cast<size_t>(r + 1)] < (*ptr)[static_cast<size_t>(r)]) {
        return invalid_argument(strfmt("gathered view: CSR pointers decrease at row %lld", (long long)r));
      }
    }
  }
  std::vector<int32_t> fidx, pidx;
  VDIT_TRY(fetch(&fidx, view.full_idx, fptr.back(), "full_idx"));
  VDIT_TRY(fetch(&pidx, view.part_idx, pptr.back(), "part_idx"));
  std::vector<int32_t> chunk_of;
  std::vector<uint32_t> select;
  if (view.select) {
    VDIT_TRY(fetch(&chunk_of, view.chunk_of, Lp, "chunk_of"));
    VDIT_TRY(fetch(&select, view.select, static_cast<int64_t>(NH) * Lp * view.select_words, "select"));
    for (int64_t j = 0; j < Lp; ++j) {
      const int32_t ch = chunk_of[static_cast<size_t>(j)];
      if (slots[static_cast<size_t>(j)] >= 0 && (ch < 0 || ch >= 32 * view.select_words)) {
        return invalid_argument(strfmt("gathered view: chunk_of[%lld] = %d is outside the %d selection words",
                                       (long long)j, ch, view.select_words));
      }
    }
  }
  std::vector<uint8_t> mark(static_cast<size_t>(nq), 0);
  for (int64_t r = 0; r < rows; ++r) {
    std::fill(mark.begin(), mark.end(), 0);
    for (int pass = 0; pass < 2; ++pass) {
      const auto& ptr = pass == 0 ? fptr : pptr;
      const auto& idx = pass == 0 ? fidx : pidx;
      for (int64_t e = ptr[static_cast<size_t>(r)]; e < ptr[static_cast<size_t>(r + 1)]; ++e) {
        const int32_t kb = idx[static_cast<size_t>(e)];
        if (kb < 0 || kb >= nq) {
          return invalid_argument(strfmt("gathered view: row %lld lists key block %d (of %lld)", (long long)r, kb,
                                         (long long)nq));
        }
        if (e > ptr[static_cast<size_t>(r)] && idx[static_cast<size_t>(e - 1)] >= kb) {
          return invalid_argument(strfmt("gathered view: row %lld's %s list is not strictly increasing", (long long)r,
                                         pass == 0 ? "full" : "part"));
        }
        if (mark[static_cast<size_t>(kb)]) {
          return invalid_argument(strfmt("gathered view: row %lld lists key block %d as full and as part", (long long)r, kb));
        }
        mark[static_cast<size_t>(kb)] = 1;
        if (pass == 0 && has_pad[static_cast<size_t>(kb)]) {
          return invalid_argument(strfmt("gathered view: row %lld lists key block %d, which holds a pad slot, as full",
                                         (long long)r, kb));
        }
      }
    }
  }
  if (view.select) {  // full blocks must keep every (query, key) pair of real tokens under the chunk rule
    for (int h = 0; h < NH; ++h) {
      for (int64_t qb = 0; qb < nq; ++qb) {
        const int64_t r = (view.head_shared ? 0 : h) * nq + qb;
        for (int64_t e = fptr[static_cast<size_t>(r)]; e < fptr[static_cast<size_t>(r + 1)]; ++e) {
          const int64_t kb = fidx[static_cast<size_t>(e)];
          for (int64_t i = qb * B; i < std::min(Lp, qb * B + B); ++i) {
            if (slots[static_cast<size_t>(i)] < 0) continue;
            const uint32_t* sw = select.data() + (static_cast<int64_t>(h) * Lp + i) * view.select_words;
            for (int64_t j = kb * B; j < std::min(Lp, kb * B + B); ++j) {
              const int32_t ch = chunk_of[static_cast<size_t>(j)];
              if (!((sw[ch / 32] >> (ch % 32)) & 1u)) {
                return invalid_argument(strfmt("gathered view: head %d lists key block %lld as full for query block %lld, "
                                               "but the chunk rule drops key %lld for query %lld",
                                               h, (long long)kb, (long long)qb, (long long)j, (long long)i));
              }
            }
          }
        }
      }
    }
  }
  if (view.items) {
    std::vector<int32_t> items;
    VDIT_TRY(fetch(&items, view.items, static_cast<int64_t>(NH) * nq, "items"));
    std::vector<uint8_t> used(items.size(), 0);
    for (size_t i = 0; i < items.size(); ++i) {
      const int32_t it = items[i];
      if (it < 0 || static_cast<size_t>(it) >= items.size() || used[static_cast<size_t>(it)]++) {
        return invalid_argument(strfmt("gathered view: items is not a permutation of the %zu work items (entry %zu = %d)",
                                       items.size(), i, it));
      }
    }
  }
  return Status::ok();
}

}  // namespace vdit::attn
