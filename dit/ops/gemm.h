// Single-precision GEMM in BLAS convention (row-major): C = alpha·op(A)·op(B) + beta·C.
// One implementation per build: OpenBLAS (gemm_blas.cpp) or a blocked, threaded fallback (gemm_no_blas.cpp).
#pragma once

#include <cstdint>

namespace vdit::ops {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace vdit::ops
