// DraftAttention region geometry, pooled draft map and head-wise selection (see draft_plan.h).
#include "attention/methods/draft_plan.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "dit/core/parallel.h"

namespace vdit::attn {

Result<DraftGeometry> draft_geometry(const VideoGrid& grid, int64_t text_len, bool text_first, int ph, int pw) {
  if (grid.f <= 0 || grid.h <= 0 || grid.w <= 0) {
    return invalid_argument("draft attention needs the latent video grid (F, H, W) of the call");
  }
  if (ph < 1 || pw < 1 || (ph * pw != 64 && ph * pw != 128)) {
    return invalid_argument(strfmt("draft attention: pool %dx%d must cover 64 or 128 tokens (one kernel block)", ph,
                                   pw));
  }
  if (text_len < 0) return invalid_argument("draft attention: negative text length");
  DraftGeometry geo;
  geo.F = grid.f;
  geo.h = grid.h;
  geo.w = grid.w;
  geo.ph = ph;
  geo.pw = pw;
  geo.Hp = (grid.h + ph - 1) / ph;
  geo.Wp = (grid.w + pw - 1) / pw;
  geo.g = grid.f * geo.Hp * geo.Wp;
  geo.block = ph * pw;
  geo.text_len = text_len;
  geo.L = grid.tokens() + text_len;
  geo.video_begin = text_first ? text_len : 0;
  geo.aligned = grid.h % ph == 0 && grid.w % pw == 0;
  geo.slots.assign(static_cast<size_t>(geo.g * geo.block + text_len), -1);
  geo.restore.assign(static_cast<size_t>(geo.L), -1);
  geo.region_size.assign(static_cast<size_t>(geo.g), 0);
  for (int64_t f = 0; f < geo.F; ++f) {
    for (int64_t a = 0; a < geo.Hp; ++a) {
      for (int64_t b = 0; b < geo.Wp; ++b) {
        const int64_t r = (f * geo.Hp + a) * geo.Wp + b;
        int64_t slot = r * geo.block;
        for (int64_t y = a * ph; y < std::min(grid.h, (a + 1) * ph); ++y) {
          for (int64_t x = b * pw; x < std::min(grid.w, (b + 1) * pw); ++x) {
            const int64_t t = geo.video_begin + (f * grid.h + y) * grid.w + x;
            geo.slots[static_cast<size_t>(slot)] = static_cast<int32_t>(t);
            geo.restore[static_cast<size_t>(t)] = static_cast<int32_t>(slot);
            ++slot;
          }
        }
        geo.region_size[static_cast<size_t>(r)] = static_cast<int32_t>(slot - r * geo.block);
      }
    }
  }
  const int64_t text_begin = text_first ? 0 : grid.tokens();
  for (int64_t i = 0; i < text_len; ++i) {
    const int64_t slot = geo.g * geo.block + i;
    geo.slots[static_cast<size_t>(slot)] = static_cast<int32_t>(text_begin + i);
    geo.restore[static_cast<size_t>(text_begin + i)] = static_cast<int32_t>(slot);
  }
  return geo;
}

int64_t draft_excluded_count(double sparsity, int64_t n) {
  const double r_arg = 1 - sparsity;  // what forward() passes
  return static_cast<int64_t>((1.0 - r_arg) * static_cast<double>(n));
}

DraftMap draft_map(const DraftGeometry& geo, const float* q, const float* k, int NH, int HD, double sparsity) {
  DraftMap m;
  const int64_t g = geo.g, B = geo.block, ld = static_cast<int64_t>(NH) * HD;
  m.g = g;
  m.NH = NH;
  m.HD = HD;
  m.q_pooled.assign(static_cast<size_t>(g * NH * HD), 0.f);
  m.k_pooled.assign(m.q_pooled.size(), 0.f);
  parallel_for(g, [&](int64_t r) {
    const int64_t n = geo.region_size[static_cast<size_t>(r)];
    std::vector<double> sq(static_cast<size_t>(ld), 0.0), sk(static_cast<size_t>(ld), 0.0);
    for (int64_t s = r * B; s < r * B + n; ++s) {
      const int64_t t = geo.slots[static_cast<size_t>(s)];
      for (int64_t c = 0; c < ld; ++c) {
        sq[c] += q[t * ld + c];
        sk[c] += k[t * ld + c];
      }
    }
    for (int64_t c = 0; c < ld; ++c) {
      m.q_pooled[static_cast<size_t>(r * ld + c)] = static_cast<float>(sq[c] / static_cast<double>(n));
      m.k_pooled[static_cast<size_t>(r * ld + c)] = static_cast<float>(sk[c] / static_cast<double>(n));
    }
  });
  m.map.assign(static_cast<size_t>(NH * g * g), 0.f);
  const double inv_sqrt_d = 1.0 / std::sqrt(static_cast<double>(HD));
  parallel_for(static_cast<int64_t>(NH) * g, [&](int64_t job) {
    const int h = static_cast<int>(job / g);
    const int64_t i = job % g;
    std::vector<double> s(static_cast<size_t>(g));
    double mx = -INFINITY;
    const float* qi = m.q_pooled.data() + i * ld + static_cast<int64_t>(h) * HD;
    for (int64_t j = 0; j < g; ++j) {
      const float* kj = m.k_pooled.data() + j * ld + static_cast<int64_t>(h) * HD;
      double dot = 0;
      for (int d = 0; d < HD; ++d) dot += static_cast<double>(qi[d]) * kj[d];
      s[j] = dot * inv_sqrt_d;
      mx = std::max(mx, s[j]);
    }
    double sum = 0;
    for (int64_t j = 0; j < g; ++j) sum += (s[j] = std::exp(s[j] - mx));
    float* row = m.map.data() + (static_cast<int64_t>(h) * g + i) * g;  // [g]
    for (int64_t j = 0; j < g; ++j) row[j] = static_cast<float>(s[j] / sum);
  });
  m.mask.assign(m.map.size(), 0);
  m.threshold.assign(static_cast<size_t>(NH), 0.f);
  const int64_t n = g * g, kx = draft_excluded_count(sparsity, n);
  for (int h = 0; h < NH; ++h) {
    const float* hm = m.map.data() + static_cast<int64_t>(h) * n;
    uint8_t* mk = m.mask.data() + static_cast<int64_t>(h) * n;
    if (kx <= 0) {
      std::fill(mk, mk + n, 1);
      m.threshold[h] = -std::numeric_limits<float>::infinity();
      continue;
    }
    if (kx >= n) {
      m.threshold[h] = std::numeric_limits<float>::infinity();
      continue;
    }
    std::vector<float> v(hm, hm + n);
    std::nth_element(v.begin(), v.begin() + (kx - 1), v.end());
    const float thr = v[static_cast<size_t>(kx - 1)];  // the largest of the kx smallest
    m.threshold[h] = thr;
    for (int64_t e = 0; e < n; ++e) mk[e] = hm[e] >= thr ? 1 : 0;
  }
  return m;
}

}  // namespace vdit::attn
