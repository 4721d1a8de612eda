// Threaded element-wise CPU kernels of the Wan2.1 DiT block on [L, D] row-major f32 activations:
// modulated LayerNorm, gated residual add, RoPE. GEMMs, RMSNorm and activations come from dit/ops.
// Each kernel is threaded over row blocks; statistics are accumulated in double, RoPE rotates in double
// as the official code does.
#pragma once

#include <cstdint>

#include "dit/model/wan_embed.h"

namespace vdit::model::cpu {

// y[L,D] = LN(x)·(1 + scale) + shift, LN without affine parameters; shift/scale [D]. y may alias x.
void modulated_layer_norm(float* y, const float* x, const float* shift, const float* scale, int64_t L, int64_t D,
                          float eps);

// x[L,D] += y[L,D] · gate[D]; gate == nullptr adds y as is.
void gated_add(float* x, const float* y, const float* gate, int64_t L, int64_t D);

// In place on t[L, NH, HD] (L = f·h·w tokens, frame-major): pair j = elements (2j, 2j+1) of each head is
// rotated by the angle of its axis (tables from make_rope_tables with the same grid and head_dim).
void apply_rope(float* t, const RopeTables& tables, int64_t NH, int64_t HD);

}  // namespace vdit::model::cpu
