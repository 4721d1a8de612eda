// Masked block attention on the CPU over a gathered token order with optional pad slots, for the methods
// whose kept set is not expressible as a BlockLayout: VMoBA's token-granular chunk selection and
// DraftAttention's padded regions (latent sizes that are not multiples of the pooling window).
// Same numerics as block_sparse_cpu.cpp (the cpu_flash.h online-softmax rows); the per-(head, query block)
// key-block lists and the element rule come from the caller. Not here: permutation per head, epilogues.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "attention/cpu_flash.h"
#include "dit/core/parallel.h"

namespace vdit::attn {

// One key block of a query block's list: `masked` blocks ask the element rule, others are kept whole.
struct GatheredKeyBlock {
  int32_t block = 0;
  bool masked = false;
};

// slots[n] = the original token at gathered position n, or -1 for a pad slot; every token of [0, L) must
// appear exactly once. Positions are cut into blocks of `block` (a multiple of 16).
struct GatheredOrder {
  std::vector<int32_t> slots;  // [Lp]
  int block = 64;
  int64_t num_blocks() const { return (static_cast<int64_t>(slots.size()) + block - 1) / block; }
};

// out [L, NH, HD] and lse [NH, L] (may be null) in the original order. For head h and query block qb,
// `list(h, qb, &blocks)` fills the key blocks to visit (ascending, no repeats); for masked ones
// `keep(h, i, j)` (gathered positions) decides each element. Pad keys are never attended and pad queries
// never written. `list` and `keep` are called concurrently from several threads. A query that keeps no key
// gets out = 0, lse = -inf.
template <class List, class Keep>
void gathered_attention_cpu(float* out, float* lse, const float* q, const float* k, const float* v, int64_t L, int NH,
                            int HD, float scale, const GatheredOrder& order, const List& list, const Keep& keep) {
  const int B = order.block;
  const int64_t Lp = static_cast<int64_t>(order.slots.size()), nb = order.num_blocks(), Lpad = nb * B;
  const int HDp = static_cast<int>(cpu::round_up(HD, cpu::kHdAlign));
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  const int32_t* slots = order.slots.data();
  std::vector<uint8_t> has_pad(static_cast<size_t>(nb), 0);
  for (int64_t n = 0; n < Lp; ++n)
    if (slots[n] < 0) has_pad[n / B] = 1;
  std::vector<float> qbuf(static_cast<size_t>(Lpad) * HDp), ktbuf(qbuf.size()), vbuf(qbuf.size());
  for (int h = 0; h < NH; ++h) {
    // Pack head h: q (scaled) [Lpad, HDp], kᵀ [HDp, Lpad], v [Lpad, HDp]; pads and padding are zero.
    parallel_for(3, [&](int64_t which) {
      const float* src = which == 0 ? q : which == 1 ? k : v;
      float* dst = (which == 0 ? qbuf : which == 1 ? ktbuf : vbuf).data();
      std::fill(dst, dst + Lpad * HDp, 0.f);
      const float mul = which == 0 ? scale : 1.f;
      for (int64_t n = 0; n < Lp; ++n) {
        if (slots[n] < 0) continue;
        const float* s = src + static_cast<int64_t>(slots[n]) * ld + static_cast<int64_t>(h) * HD;
        for (int c = 0; c < HD; ++c) {
          if (which == 1) {
            dst[static_cast<int64_t>(c) * Lpad + n] = s[c];
          } else {
            dst[n * HDp + c] = s[c] * mul;
          }
        }
      }
    });
    const cpu::PackedHead head{qbuf.data(), ktbuf.data(), vbuf.data(), Lp, Lp, Lpad, HDp};
    parallel_for(nb, [&](int64_t qb) {
      thread_local std::vector<GatheredKeyBlock> blocks;
      blocks.clear();
      list(h, qb, &blocks);
      cpu::FlashRow& fr = cpu::thread_flash_row(B, HDp);
      const int64_t q0 = qb * B;
      fr.begin(&head, q0);
      for (const GatheredKeyBlock& kb : blocks) {
        const bool pads = has_pad[static_cast<size_t>(kb.block)] != 0;
        fr.add(static_cast<int64_t>(kb.block) * B, kb.masked || pads, [&](int64_t i, int64_t j) {
          return slots[j] >= 0 && (!kb.masked || keep(h, i, j));
        });
      }
      for (int i = 0; i < fr.rows(); ++i) {
        const int32_t t = slots[q0 + i];
        if (t < 0) continue;
        const float row_lse = fr.finish_row(i, out + t * ld + static_cast<int64_t>(h) * HD, HD);
        if (lse) lse[static_cast<int64_t>(h) * L + t] = row_lse;
      }
    });
  }
}

}  // namespace vdit::attn
