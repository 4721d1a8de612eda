// Counter-based Gaussian noise: Philox4x32-10 (Random123) plus Box–Muller, so element i of the noise
// for a seed depends only on (seed, i) — never on thread count, shape or backend. The core functions
// are inline and __host__ __device__ under nvcc; their float64 math uses only IEEE-exact operations
// (+ − × ÷, sqrt, explicit fma), so a CUDA kernel gives the same bits. It does not reproduce PyTorch's
// torch.randn streams (load the noise from a file for parity with the reference).
//
// Mapping (normative for every backend): block b = i / 4 runs Philox4x32-10 on counter
// {lo32(b), hi32(b), 0, 0} with key {lo32(seed), hi32(seed)} giving words w0..w3. Pair (w0, w1) gives
// elements 4b, 4b+1 and pair (w2, w3) gives 4b+2, 4b+3 by Box–Muller:
//   u = (w_even + 0.5)·2^-32 ∈ (0, 1),  t = w_odd·2^-32 ∈ [0, 1),  r = sqrt(−2 ln u),
//   z_even = float(r·cos 2πt),  z_odd = float(r·sin 2πt).
#pragma once

#include <math.h>    // ::fma, ::sqrt: the global overloads are __host__ __device__ under nvcc
#include <stdint.h>
#include <string.h>  // ::memcpy, callable from device code

#include "dit/core/status.h"
#include "dit/core/tensor.h"

#if defined(__CUDACC__)
#define VDIT_HOST_DEVICE __host__ __device__
#else
#define VDIT_HOST_DEVICE
#endif

namespace vdit {

struct Philox4x32 {
  uint32_t v[4];
};

// Philox4x32 with 10 rounds (Salmon et al., SC'11; the Random123 reference constants).
VDIT_HOST_DEVICE inline Philox4x32 philox4x32_10(Philox4x32 ctr, uint32_t key0, uint32_t key1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key0 += kWeyl0;
      key1 += kWeyl1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * ctr.v[0];
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * ctr.v[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
  }
  return ctr;
}

namespace rng_detail {

// ln(u) for positive, finite, normal u: u = m·2^e with m ∈ [√½, √2), ln m = 2·atanh(s), s = (m−1)/(m+1),
// |s| ≤ 0.1716, by its series to s^23 (truncation < 1e-18). About 1 ulp in float64.
VDIT_HOST_DEVICE inline double log_positive(double u) {
  uint64_t bits;
  ::memcpy(&bits, &u, sizeof bits);
  int e = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull;  // m ∈ [1, 2)
  double m;
  ::memcpy(&m, &bits, sizeof m);
  if (m > 1.4142135623730951) {
    m *= 0.5;  // exact
    e += 1;
  }
  const double s = (m - 1.0) / (m + 1.0);  // m − 1 is exact (Sterbenz)
  const double w = s * s;
  double p = 1.0 / 23.0;
  p = ::fma(p, w, 1.0 / 21.0);
  p = ::fma(p, w, 1.0 / 19.0);
  p = ::fma(p, w, 1.0 / 17.0);
  p = ::fma(p, w, 1.0 / 15.0);
  p = ::fma(p, w, 1.0 / 13.0);
  p = ::fma(p, w, 1.0 / 11.0);
  p = ::fma(p, w, 1.0 / 9.0);
  p = ::fma(p, w, 1.0 / 7.0);
  p = ::fma(p, w, 1.0 / 5.0);
  p = ::fma(p, w, 1.0 / 3.0);
  p = ::fma(p, w, 1.0);
  const double ln_m = (2.0 * s) * p;
  constexpr double kLn2 = 0.6931471805599453;  // ln 2 rounded to float64
  return ::fma(static_cast<double>(e), kLn2, ln_m);
}

// cos 2πt and sin 2πt for t ∈ [0, 1): 4t = k + f exactly with |f| ≤ ½, a = f·π/2 ∈ [−π/4, π/4],
// Taylor series of sin a to a^19 and cos a to a^20 (truncation < 1e-19), then a quarter-turn rotation by k.
VDIT_HOST_DEVICE inline void sincos_2pi(double t, double* sin_out, double* cos_out) {
  const double y = 4.0 * t;                           // exact
  const double k = static_cast<double>(static_cast<int64_t>(y + 0.5));  // nearest quarter turn, y ≥ 0
  const double f = y - k;                             // exact
  constexpr double kHalfPi = 1.5707963267948966;
  const double a = f * kHalfPi;
  const double a2 = a * a;
  double s = -1.0 / 121645100408832000.0;  // −1/19!
  s = ::fma(s, a2, 1.0 / 355687428096000.0);
  s = ::fma(s, a2, -1.0 / 1307674368000.0);
  s = ::fma(s, a2, 1.0 / 6227020800.0);
  s = ::fma(s, a2, -1.0 / 39916800.0);
  s = ::fma(s, a2, 1.0 / 362880.0);
  s = ::fma(s, a2, -1.0 / 5040.0);
  s = ::fma(s, a2, 1.0 / 120.0);
  s = ::fma(s, a2, -1.0 / 6.0);
  s = ::fma(s, a2, 1.0);
  const double sin_a = a * s;
  double c = 1.0 / 2432902008176640000.0;  // 1/20!
  c = ::fma(c, a2, -1.0 / 6402373705728000.0);
  c = ::fma(c, a2, 1.0 / 20922789888000.0);
  c = ::fma(c, a2, -1.0 / 87178291200.0);
  c = ::fma(c, a2, 1.0 / 479001600.0);
  c = ::fma(c, a2, -1.0 / 3628800.0);
  c = ::fma(c, a2, 1.0 / 40320.0);
  c = ::fma(c, a2, -1.0 / 720.0);
  c = ::fma(c, a2, 1.0 / 24.0);
  c = ::fma(c, a2, -0.5);
  const double cos_a = ::fma(c, a2, 1.0);
  switch (static_cast<int>(k) & 3) {
    case 0: *cos_out = cos_a;  *sin_out = sin_a;  break;
    case 1: *cos_out = -sin_a; *sin_out = cos_a;  break;
    case 2: *cos_out = -cos_a; *sin_out = -sin_a; break;
    default: *cos_out = sin_a; *sin_out = -cos_a; break;
  }
}

}  // namespace rng_detail

// Box–Muller on one pair of Philox words: two independent standard normals.
VDIT_HOST_DEVICE inline void box_muller(uint32_t w_even, uint32_t w_odd, float* z_even, float* z_odd) {
  constexpr double kTwoPow32Inv = 1.0 / 4294967296.0;
  const double u = (static_cast<double>(w_even) + 0.5) * kTwoPow32Inv;  // exact, in (0, 1)
  const double t = static_cast<double>(w_odd) * kTwoPow32Inv;           // exact, in [0, 1)
  const double r = ::sqrt(-2.0 * rng_detail::log_positive(u));
  double s, c;
  rng_detail::sincos_2pi(t, &s, &c);
  *z_even = static_cast<float>(r * c);
  *z_odd = static_cast<float>(r * s);
}

// The four normals of block b (elements 4b .. 4b+3) for `seed`.
VDIT_HOST_DEVICE inline void gaussian_block(uint64_t seed, uint64_t block, float out[4]) {
  const Philox4x32 ctr{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u}};
  const Philox4x32 w = philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  box_muller(w.v[0], w.v[1], &out[0], &out[1]);
  box_muller(w.v[2], w.v[3], &out[2], &out[3]);
}

// Element `index` of the noise for `seed`.
VDIT_HOST_DEVICE inline float gaussian_at(uint64_t seed, uint64_t index) {
  float z[4];
  gaussian_block(seed, index >> 2, z);
  return z[index & 3];
}

// dst[j] = gaussian_at(seed, first_index + j) for j < n, threaded.
void fill_gaussian(float* dst, int64_t n, uint64_t seed, uint64_t first_index = 0);

// A new f32 tensor of `shape` filled with elements 0 .. numel−1 of the noise for `seed`, row-major.
Result<Tensor> gaussian_noise(uint64_t seed, Shape shape);

}  // namespace vdit
