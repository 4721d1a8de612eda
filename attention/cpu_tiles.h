// Internal CPU micro-kernels shared by the dense and block-sparse attention kernels: a register-tiled
// GEMM accumulate (4 rows x 16 columns per tile, GCC/Clang vector extensions, so it vectorizes to AVX2/FMA
// on x86-64-v3 and to SSE elsewhere), a vectorized exp, and the packed per-head operand layout.
// Written by hand on purpose: OpenBLAS (Debian's pthreads build) spawns its own threads when called from
// inside an OpenMP parallel region, oversubscribing the cores; these kernels run single-threaded per job.
#pragma once

#include <cmath>
#include <cstdint>

namespace vdit::attn::cpu {

typedef float v8f __attribute__((vector_size(32)));    // register values
typedef int32_t v8i __attribute__((vector_size(32)));
// Memory access type: unaligned and allowed to alias float arrays.
typedef float v8f_mem __attribute__((vector_size(32), aligned(4), may_alias));

inline v8f load8(const float* p) { return *reinterpret_cast<const v8f_mem*>(p); }
inline void store8(float* p, v8f v) { *reinterpret_cast<v8f_mem*>(p) = v; }
inline v8f splat8(float x) { return v8f{x, x, x, x, x, x, x, x}; }

// Head dims are padded to a multiple of this (zero columns change neither q·k nor the kept output columns).
constexpr int kHdAlign = 16;
inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// C[M, N] (+)= A[M, K] · B[K, N], all row-major with leading dimensions; M % 4 == 0, N % 16 == 0.
// accumulate = false overwrites C. A 4 x 16 register tile (8 accumulators) per step; column panels outer,
// so the K x 16 panel of B stays in L1 while all rows of A pass over it.
inline void gemm_tile(float* c, int64_t ldc, const float* a, int64_t lda, const float* b, int64_t ldb, int M, int N,
                      int K, bool accumulate) {
  for (int j = 0; j < N; j += 16) {
    const float* bj = b + j;
    for (int i = 0; i < M; i += 4) {
      const float* a0 = a + (i + 0) * lda;
      const float* a1 = a + (i + 1) * lda;
      const float* a2 = a + (i + 2) * lda;
      const float* a3 = a + (i + 3) * lda;
      v8f c00 = splat8(0), c01 = splat8(0), c10 = splat8(0), c11 = splat8(0);
      v8f c20 = splat8(0), c21 = splat8(0), c30 = splat8(0), c31 = splat8(0);
      for (int kk = 0; kk < K; ++kk) {
        const v8f b0 = load8(bj + kk * ldb), b1 = load8(bj + kk * ldb + 8);
        const v8f x0 = splat8(a0[kk]), x1 = splat8(a1[kk]), x2 = splat8(a2[kk]), x3 = splat8(a3[kk]);
        c00 += x0 * b0; c01 += x0 * b1;
        c10 += x1 * b0; c11 += x1 * b1;
        c20 += x2 * b0; c21 += x2 * b1;
        c30 += x3 * b0; c31 += x3 * b1;
      }
      float* r0 = c + (i + 0) * ldc + j;
      float* r1 = c + (i + 1) * ldc + j;
      float* r2 = c + (i + 2) * ldc + j;
      float* r3 = c + (i + 3) * ldc + j;
      if (accumulate) {
        c00 += load8(r0); c01 += load8(r0 + 8);
        c10 += load8(r1); c11 += load8(r1 + 8);
        c20 += load8(r2); c21 += load8(r2 + 8);
        c30 += load8(r3); c31 += load8(r3 + 8);
      }
      store8(r0, c00); store8(r0 + 8, c01);
      store8(r1, c10); store8(r1 + 8, c11);
      store8(r2, c20); store8(r2 + 8, c21);
      store8(r3, c30); store8(r3 + 8, c31);
    }
  }
}

// exp(x) for x <= ~0 (softmax arguments): Cody-Waite range reduction and a degree-6 polynomial, relative
// error < 2e-7 on [-87, 0]; arguments below -87 (including -inf) give exactly 0.
inline v8f exp8(v8f x) {
  const v8f lo = splat8(-87.0f);
  const v8i keep = x >= lo;
  x = x < lo ? lo : x;
  x = x > splat8(88.0f) ? splat8(88.0f) : x;
  const v8f fx = x * splat8(1.44269504088896341f);
  // Round to nearest with the 1.5·2^23 trick (|fx| < 2^22 here); needs no -ffast-math reassociation.
  const v8f magic = splat8(12582912.0f);
  const v8f n = (fx + magic) - magic;
  v8f r = x - n * splat8(0.693359375f);
  r = r - n * splat8(-2.12194440e-4f);
  v8f p = splat8(1.9875691500e-4f);
  p = p * r + splat8(1.3981999507e-3f);
  p = p * r + splat8(8.3334519073e-3f);
  p = p * r + splat8(4.1665795894e-2f);
  p = p * r + splat8(1.6666665459e-1f);
  p = p * r + splat8(5.0000001201e-1f);
  p = p * r * r + r + splat8(1.0f);
  const v8i e = __builtin_convertvector(n, v8i);
  const v8i bits = (e + 127) << 23;
  // A cast between same-size vector types reinterprets the bits (GCC/Clang vector extensions).
  const v8f scale = (v8f)bits;  // 2^n
  const v8f res = p * scale;
  return (v8f)((v8i)res & keep);
}

}  // namespace vdit::attn::cpu
