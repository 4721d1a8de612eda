// DeviceBlockLayout: validates a host BlockLayout, computes the kernel's work order and FLOP accounting,
// and copies the lists, permutation and order into DeviceBuffers. Host code only (the copies go through
// DeviceBuffer, which reports `unsupported` in builds without CUDA); the kernel is elsewhere.
#include <algorithm>
#include <numeric>

#include "attention/cuda/block_sparse_cuda.h"

namespace vdit::attn {
namespace {

// Copies `v` into `buf`, growing it only when it is too small.
template <class T>
Status put(DeviceBuffer& buf, const std::vector<T>& v) {
  const size_t bytes = v.size() * sizeof(T);
  if (bytes == 0) return Status::ok();
  if (buf.size() < bytes) {
    buf = DeviceBuffer();
    VDIT_ASSIGN(buf, DeviceBuffer::allocate(bytes));
  }
  return buf.copy_from_host(v.data(), bytes);
}

int64_t row_length(const BlockLayout& l, int64_t r) {
  return (l.full_ptr[r + 1] - l.full_ptr[r]) + (l.part_ptr[r + 1] - l.part_ptr[r]);
}

}  // namespace

std::vector<int32_t> block_sparse_work_order(const BlockLayout& layout) {
  const int64_t nq = layout.num_q_blocks();
  std::vector<int32_t> items(static_cast<size_t>(nq) * layout.num_heads);
  std::vector<int64_t> len(static_cast<size_t>(nq));
  for (int h = 0; h < layout.num_heads; ++h) {
    int32_t* seg = items.data() + static_cast<size_t>(h) * nq;
    for (int64_t qb = 0; qb < nq; ++qb) {
      len[static_cast<size_t>(qb)] = row_length(layout, layout.row(h, qb));
      seg[qb] = static_cast<int32_t>(h * nq + qb);
    }
    std::stable_sort(seg, seg + nq, [&](int32_t a, int32_t b) {
      return len[static_cast<size_t>(a - h * nq)] > len[static_cast<size_t>(b - h * nq)];
    });
  }
  return items;
}

Result<DeviceBlockLayout> DeviceBlockLayout::upload(const BlockLayout& layout) {
  DeviceBlockLayout d;
  VDIT_TRY(d.update(layout));
  return d;
}

Status DeviceBlockLayout::update(const BlockLayout& layout) {
  VDIT_TRY(layout.validate().with_context("uploading a block layout"));
  const int64_t L = layout.seq_len, B = layout.block, nq = layout.num_q_blocks();
  if (L >= (int64_t{1} << 30)) {
    return unsupported(strfmt("block-sparse CUDA attention: L=%lld is too long (the kernel indexes tokens with "
                              "32-bit integers; at most 2^30 - 1)", static_cast<long long>(L)));
  }
  if (static_cast<int64_t>(layout.num_heads) * nq >= (int64_t{1} << 31)) {
    return unsupported("block-sparse CUDA attention: more than 2^31 work items (heads × query blocks)");
  }
  const std::vector<int32_t> items = block_sparse_work_order(layout);
  // FLOP accounting: every listed block counted whole, clipped at the sequence tail.
  auto extent = [&](int64_t b) { return std::min(B, L - b * B); };
  double listed = 0;
  int64_t blocks = 0, longest = 0;
  for (int h = 0; h < layout.num_heads; ++h) {
    for (int64_t qb = 0; qb < nq; ++qb) {
      const int64_t r = layout.row(h, qb);
      double cols = 0;
      for (int64_t e = layout.full_ptr[r]; e < layout.full_ptr[r + 1]; ++e) cols += extent(layout.full_idx[e]);
      for (int64_t e = layout.part_ptr[r]; e < layout.part_ptr[r + 1]; ++e) cols += extent(layout.part_idx[e]);
      listed += cols * static_cast<double>(extent(qb));
      blocks += row_length(layout, r);
      longest = std::max(longest, row_length(layout, r));
    }
  }
  VDIT_TRY(put(full_ptr_, layout.full_ptr));
  VDIT_TRY(put(full_idx_, layout.full_idx));
  VDIT_TRY(put(part_ptr_, layout.part_ptr));
  VDIT_TRY(put(part_idx_, layout.part_idx));
  VDIT_TRY(put(perm_, layout.perm));
  VDIT_TRY(put(items_, items));
  block_ = layout.block;
  seq_len_ = L;
  num_heads_ = layout.num_heads;
  head_shared_ = layout.head_shared;
  num_q_blocks_ = nq;
  predicate_ = layout.predicate;
  perm_kind_ = !layout.has_perm() ? 0 : layout.perm_shared() ? 1 : 2;
  num_items_ = static_cast<int64_t>(items.size());
  listed_elements_ = listed;
  block_density_ = static_cast<double>(blocks) / (static_cast<double>(layout.num_heads) * nq * nq);
  max_row_blocks_ = longest;
  return Status::ok();
}

}  // namespace vdit::attn
