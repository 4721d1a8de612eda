// Dense attention kernels on the CPU for [L, NH, HD] tensors: a tiled online-softmax kernel (fast path,
// threaded over heads and query tiles) and a plain reference with double accumulation for tests.
#pragma once

#include <cstdint>

namespace vdit::attn {

// out[Lq,NH,HD] = softmax(scale·q·kᵀ)·v per head; k, v are [Lk,NH,HD]. `lse` [NH,Lq] may be null.
void dense_attention_cpu(float* out, float* lse, const float* q, const float* k, const float* v, int64_t Lq,
                         int64_t Lk, int NH, int HD, float scale);

// Reference: explicit scores row by row in double precision.
void dense_attention_reference(float* out, float* lse, const float* q, const float* k, const float* v, int64_t Lq,
                               int64_t Lk, int NH, int HD, float scale);

}  // namespace vdit::attn
