// Plain CPU building blocks shared by the DiT, the text encoder and the VAE, on contiguous f32 data:
// GEMM (BLAS when built in), norms, activations. Each op is threaded through dit/core/parallel.h.
// Reference versions used by tests live beside them in cpu_ops_reference.h.
#pragma once

#include <cstdint>

namespace vdit::ops {

// y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N]) — PyTorch Linear layout. `accumulate` adds into y instead.
void linear(float* y, const float* x, const float* w, const float* bias, int64_t M, int64_t N, int64_t K,
            bool accumulate = false);
// C[M,N] = A[M,K] · B[K,N] (row-major, no transposes), optionally scaled: C = alpha·A·B + beta·C.
void matmul(float* c, const float* a, const float* b, int64_t M, int64_t N, int64_t K, float alpha = 1.0f,
            float beta = 0.0f);
// C[M,N] = alpha · A[M,K] · B[N,K]ᵀ + beta · C  (e.g. scores = Q·Kᵀ).
void matmul_nt(float* c, const float* a, const float* b, int64_t M, int64_t N, int64_t K, float alpha = 1.0f,
               float beta = 0.0f);

// LayerNorm over the last axis (size C) of x[R,C]: (x - mean)/sqrt(var + eps), optional affine.
void layer_norm(float* y, const float* x, const float* weight, const float* bias, int64_t R, int64_t C, float eps);
// RMSNorm over the last axis: x / sqrt(mean(x²) + eps) · weight.
void rms_norm(float* y, const float* x, const float* weight, int64_t R, int64_t C, float eps);

void gelu_tanh(float* y, const float* x, int64_t n);
void silu(float* y, const float* x, int64_t n);
// In-place softmax over rows of x[R,C].
void softmax_rows(float* x, int64_t R, int64_t C);

}  // namespace vdit::ops
