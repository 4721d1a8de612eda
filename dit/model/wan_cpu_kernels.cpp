// Element-wise DiT kernels, threaded over blocks of rows (a block is enough work to amortize the fork).
#include "dit/model/wan_cpu_kernels.h"

#include <algorithm>
#include <cmath>

#include "dit/core/parallel.h"

namespace vdit::model::cpu {
namespace {

// Runs f(r0, r1) over [0, rows) in blocks of about 64K elements.
template <class F>
void for_row_blocks(int64_t rows, int64_t row_elems, F&& f) {
  const int64_t block = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, row_elems));
  const int64_t nblocks = (rows + block - 1) / block;
  parallel_for(nblocks, [&](int64_t b) { f(b * block, std::min(rows, (b + 1) * block)); });
}

}  // namespace

void modulated_layer_norm(float* y, const float* x, const float* shift, const float* scale, int64_t L, int64_t D,
                          float eps) {
  for_row_blocks(L, D, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * D;
      float* yr = y + r * D;
      double s = 0, s2 = 0;
      for (int64_t c = 0; c < D; ++c) s += xr[c];
      const double mean = s / static_cast<double>(D);
      for (int64_t c = 0; c < D; ++c) {
        const double d = xr[c] - mean;
        s2 += d * d;
      }
      const float inv = static_cast<float>(1.0 / std::sqrt(s2 / static_cast<double>(D) + eps));
      const float m = static_cast<float>(mean);
      // Official order: norm(x) * (1 + scale) + shift, all in f32.
      for (int64_t c = 0; c < D; ++c) yr[c] = ((xr[c] - m) * inv) * (1.0f + scale[c]) + shift[c];
    }
  });
}

void gated_add(float* x, const float* y, const float* gate, int64_t L, int64_t D) {
  for_row_blocks(L, D, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* xr = x + r * D;
      const float* yr = y + r * D;
      if (gate) {
        for (int64_t c = 0; c < D; ++c) xr[c] += yr[c] * gate[c];
      } else {
        for (int64_t c = 0; c < D; ++c) xr[c] += yr[c];
      }
    }
  });
}

void apply_rope(float* t, const RopeTables& tb, int64_t NH, int64_t HD) {
  const int64_t h = tb.extent[1], w = tb.extent[2];
  const int64_t L = tb.extent[0] * h * w;
  const int64_t p0 = tb.pairs[0], p1 = tb.pairs[1], p2 = tb.pairs[2];
  for_row_blocks(L, NH * HD, [&](int64_t r0, int64_t r1) {
    for (int64_t l = r0; l < r1; ++l) {
      const int64_t pos[3] = {l / (h * w), (l / w) % h, l % w};
      const double* cs[3] = {tb.cos[0].data() + pos[0] * p0, tb.cos[1].data() + pos[1] * p1,
                             tb.cos[2].data() + pos[2] * p2};
      const double* sn[3] = {tb.sin[0].data() + pos[0] * p0, tb.sin[1].data() + pos[1] * p1,
                             tb.sin[2].data() + pos[2] * p2};
      for (int64_t n = 0; n < NH; ++n) {
        float* v = t + (l * NH + n) * HD;
        int64_t j = 0;
        for (int a = 0; a < 3; ++a) {
          for (int64_t k = 0; k < tb.pairs[a]; ++k, ++j) {
            const double re = v[2 * j], im = v[2 * j + 1];
            v[2 * j] = static_cast<float>(re * cs[a][k] - im * sn[a][k]);
            v[2 * j + 1] = static_cast<float>(re * sn[a][k] + im * cs[a][k]);
          }
        }
      }
    }
  });
}

}  // namespace vdit::model::cpu
