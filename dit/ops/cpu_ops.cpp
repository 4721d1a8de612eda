// CPU implementations of the shared ops. GEMMs go to cblas_sgemm when OpenBLAS is built in
// (gemm_blas.cpp), else to a blocked fallback (gemm_no_blas.cpp); norms and activations are threaded
// loops with double accumulation for the statistics.
#include "dit/ops/cpu_ops.h"

#include <cmath>

#include "dit/core/parallel.h"
#include "dit/ops/gemm.h"

namespace vdit::ops {

void linear(float* y, const float* x, const float* w, const float* bias, int64_t M, int64_t N, int64_t K,
            bool accumulate) {
  if (bias && !accumulate) {
    parallel_for_static(M, [&](int64_t m) {
      for (int64_t n = 0; n < N; ++n) y[m * N + n] = bias[n];
    });
    sgemm(false, true, M, N, K, 1.0f, x, K, w, K, 1.0f, y, N);
    return;
  }
  sgemm(false, true, M, N, K, 1.0f, x, K, w, K, accumulate ? 1.0f : 0.0f, y, N);
  if (bias && accumulate) {
    parallel_for_static(M, [&](int64_t m) {
      for (int64_t n = 0; n < N; ++n) y[m * N + n] += bias[n];
    });
  }
}

void matmul(float* c, const float* a, const float* b, int64_t M, int64_t N, int64_t K, float alpha, float beta) {
  sgemm(false, false, M, N, K, alpha, a, K, b, N, beta, c, N);
}

void matmul_nt(float* c, const float* a, const float* b, int64_t M, int64_t N, int64_t K, float alpha, float beta) {
  sgemm(false, true, M, N, K, alpha, a, K, b, K, beta, c, N);
}

void layer_norm(float* y, const float* x, const float* weight, const float* bias, int64_t R, int64_t C, float eps) {
  parallel_for_static(R, [&](int64_t r) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    double s = 0, s2 = 0;
    for (int64_t c = 0; c < C; ++c) s += xr[c];
    double mean = s / C;
    for (int64_t c = 0; c < C; ++c) {
      double d = xr[c] - mean;
      s2 += d * d;
    }
    float inv = static_cast<float>(1.0 / std::sqrt(s2 / C + eps));
    float m = static_cast<float>(mean);
    for (int64_t c = 0; c < C; ++c) {
      float v = (xr[c] - m) * inv;
      if (weight) v *= weight[c];
      if (bias) v += bias[c];
      yr[c] = v;
    }
  });
}

void rms_norm(float* y, const float* x, const float* weight, int64_t R, int64_t C, float eps) {
  parallel_for_static(R, [&](int64_t r) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    double s2 = 0;
    for (int64_t c = 0; c < C; ++c) s2 += static_cast<double>(xr[c]) * xr[c];
    float inv = static_cast<float>(1.0 / std::sqrt(s2 / C + eps));
    for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * inv * (weight ? weight[c] : 1.0f);
  });
}

void gelu_tanh(float* y, const float* x, int64_t n) {
  const float k = 0.7978845608028654f;  // sqrt(2/pi)
  parallel_for_static(n, [&](int64_t i) {
    float v = x[i];
    y[i] = 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
  });
}

void silu(float* y, const float* x, int64_t n) {
  parallel_for_static(n, [&](int64_t i) { y[i] = x[i] / (1.0f + std::exp(-x[i])); });
}

void softmax_rows(float* x, int64_t R, int64_t C) {
  parallel_for_static(R, [&](int64_t r) {
    float* xr = x + r * C;
    float m = -INFINITY;
    for (int64_t c = 0; c < C; ++c) m = std::fmax(m, xr[c]);
    double s = 0;
    for (int64_t c = 0; c < C; ++c) {
      xr[c] = std::exp(xr[c] - m);
      s += xr[c];
    }
    float inv = static_cast<float>(1.0 / s);
    for (int64_t c = 0; c < C; ++c) xr[c] *= inv;
  });
}

}  // namespace vdit::ops
