// sgemm fallback for builds without BLAS: threaded over rows of C, k-blocked, vectorizable inner loop.
#include <vector>

#include "dit/core/parallel.h"
#include "dit/ops/gemm.h"

namespace vdit::ops {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  parallel_for(M, [&](int64_t m) {
    std::vector<float> acc(static_cast<size_t>(N), 0.0f);
    for (int64_t k = 0; k < K; ++k) {
      float a = trans_a ? A[k * lda + m] : A[m * lda + k];
      if (a == 0.0f) continue;
      if (!trans_b) {
        const float* b = B + k * ldb;
        for (int64_t n = 0; n < N; ++n) acc[n] += a * b[n];
      } else {
        for (int64_t n = 0; n < N; ++n) acc[n] += a * B[n * ldb + k];
      }
    }
    float* c = C + m * ldc;
    for (int64_t n = 0; n < N; ++n) c[n] = alpha * acc[n] + (beta == 0.0f ? 0.0f : beta * c[n]);
  });
}

}  // namespace vdit::ops
