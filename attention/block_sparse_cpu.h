// Block-sparse attention forward on the CPU for [L, NH, HD] f32 tensors and a BlockLayout.
// Contract:
//  * out[L, NH, HD] = ρ ⊙ softmax_kept(scale·q·kᵀ)·v + R per head, in the ORIGINAL token order (the layout's
//    permutation is applied by gathering q/k/v before and scattering out/lse after).
//  * lse [NH, L] (natural log, original order) of the kept scores, before the epilogue; may be null.
//  * Epilogue (Re-ttention): with `epilogue.rho` [NH, L] and/or `epilogue.residual` [L, NH, HD] (original
//    order), out = rho·O_sparse + residual; a null pointer means ρ = 1 / R = 0.
//  * A row whose kept set is empty (impossible for a validated layout) gets out = 0 (+R), lse = -inf.
// `block_sparse_attention_cpu` is the fast kernel (tiled online softmax, threads over heads and query blocks,
// skips absent blocks); `block_sparse_attention_reference` expands the lists into an element mask and runs
// dense masked attention in double — a different formulation, used by tests to check the index logic.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/block_layout.h"
#include "dit/core/status.h"

namespace vdit::attn {

struct SparseEpilogue {
  const float* rho = nullptr;       // [NH, L], original order, or null
  const float* residual = nullptr;  // [L, NH, HD], original order, or null
};

// Both functions check that the layout is valid and matches (L, NH) and return invalid_argument if not.
Status block_sparse_attention_cpu(float* out, float* lse, const BlockLayout& layout, const float* q, const float* k,
                                  const float* v, int64_t L, int NH, int HD, float scale,
                                  const SparseEpilogue& epilogue = {});

Status block_sparse_attention_reference(float* out, float* lse, const BlockLayout& layout, const float* q,
                                        const float* k, const float* v, int64_t L, int NH, int HD, float scale,
                                        const SparseEpilogue& epilogue = {});

// The element mask of one head in the ORIGINAL token order: mask[i * L + j] = 1 when query i keeps key j.
// O(L²) memory: for tests and small diagnostics only.
std::vector<uint8_t> expand_element_mask(const BlockLayout& layout, int head);

}  // namespace vdit::attn
