// Attention of one query block of one head computed straight from a BlockLayout's lists in double
// precision: a second formulation next to block_sparse_attention_reference (which expands an L×L element
// mask), cheap enough to check a few query blocks at any L (the GPU tests and `vdit bench attention`).
// With `round_p` it rounds P to bf16/f16 before P·V: the "naive same-precision implementation" of the
// flash-attention tolerance rule. It applies no epilogue (callers add ρ and R).
#pragma once

#include <cstdint>

#include "attention/block_layout.h"
#include "dit/core/status.h"

namespace vdit::attn {

enum class RoundP : uint8_t { none, bf16, f16 };

// One head's rows: token t's vector is at q + t·ld (HD values), in the ORIGINAL token order.
struct HeadRows {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t ld = 0;
  int HD = 0;
};

// Query block `qb` (method order) of `head`: out [rows, HD], lse [rows] (natural log; -inf and zeros for an
// empty kept set) and orig [rows] (the original token of each row), rows = min(B, L - qb·B).
Status block_rows_reference(float* out, float* lse, int64_t* orig, const BlockLayout& layout, int head, int64_t qb,
                            const HeadRows& in, float scale, RoundP round_p = RoundP::none);

}  // namespace vdit::attn
