// Scalar helpers shared by the flow-matching solvers (internal to schedulers/). The reference computes
// its per-step scalars on 0-d float32 tensors, so these stay in float32 on purpose; the element-wise
// loops that use them are compiled with -ffp-contract=off so a·b − c is never fused into an FMA.
#pragma once

#include <cmath>

namespace vdit::flow {

// α(σ) = 1 − σ for the rectified-flow path x_σ = (1−σ)·x0 + σ·ε.
inline float alpha(float sigma) { return 1.0f - sigma; }

// Correctly rounded float32 log / exp / expm1: evaluated in float64, then rounded once. This is what
// the reference's torch.log / torch.exp / torch.expm1 on 0-d float32 tensors gave on the official grids
// (glibc's float versions are allowed to be 1 ulp off, and that ulp shows in the UniPC loops).
inline float log_f32(float x) { return static_cast<float>(std::log(static_cast<double>(x))); }
inline float exp_f32(float x) { return static_cast<float>(std::exp(static_cast<double>(x))); }
inline float expm1_f32(float x) { return static_cast<float>(std::expm1(static_cast<double>(x))); }

// Half log-SNR λ(σ) = ln α − ln σ, finite for 0 < σ < 1 (callers special-case σ = 0 and σ = 1).
inline float lambda(float sigma) { return log_f32(alpha(sigma)) - log_f32(sigma); }

}  // namespace vdit::flow
