// Re-ttention's device-side cache arithmetic (methods.md §5): deriving ρ and the residual R from a caching
// step's dense and band passes, and the ρ ← min(ρ + λ, 1) update after a sparse step. The attention itself
// runs on the block-sparse kernel with its ρ/R epilogue (block_sparse_cuda.h); the method is
// attention/methods/rettention.cpp. Builds without CUDA return `unsupported` (rettention_device_no_cuda.cpp).
#pragma once

#include <cstdint>

#include "attention/device_attention.h"
#include "dit/core/status.h"

namespace vdit::attn {

// rho[h, t] = exp(lse_band[h, t] − lse_full[h, t])                       [NH, L] f32
// residual[t, h, d] = out[t, h, d] − rho[h, t] · o_band[t, h, d]          [L, NH, HD] f32
// out (the dense output) and o_band are [L, NH, HD] of `dtype`; lse_full/lse_band [NH, L] f32. Async on `stream`.
Status rettention_cache_update(float* rho, float* residual, const void* out, const void* o_band, const float* lse_full,
                               const float* lse_band, int64_t L, int NH, int HD, DeviceDType dtype, void* stream);

// rho[i] += lambda for i < n, clamped to ≤ 1 when `clamp`. Async on `stream`.
Status rettention_rho_step(float* rho, int64_t n, float lambda, bool clamp, void* stream);

}  // namespace vdit::attn
