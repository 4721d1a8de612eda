// Sinusoidal time embedding, RoPE angles/tables and (un)patchify of the Wan2.1 DiT.
#include "dit/model/wan_embed.h"

#include <cmath>

#include "dit/core/parallel.h"

namespace vdit::model {

std::vector<double> timestep_sinusoid(int64_t freq_dim, double t) {
  const int64_t half = freq_dim / 2;
  std::vector<double> emb(static_cast<size_t>(2 * half));
  for (int64_t j = 0; j < half; ++j) {
    // torch.pow(10000, -arange(half).div(half)) in float64, then outer(t, ·).
    const double arg = t * std::pow(10000.0, -static_cast<double>(j) / static_cast<double>(half));
    emb[static_cast<size_t>(j)] = std::cos(arg);
    emb[static_cast<size_t>(half + j)] = std::sin(arg);
  }
  return emb;
}

std::array<int64_t, 3> rope_axis_pairs(int64_t head_dim) {
  const int64_t c = head_dim / 2;
  return {c - 2 * (c / 3), c / 3, c / 3};
}

double rope_angle(int64_t pos, int64_t j, int64_t axis_pairs) {
  // rope_params(1024, dim=2·pairs): 1 / theta^(arange(0, dim, 2) / dim), in float64.
  const double dim = 2.0 * static_cast<double>(axis_pairs);
  return static_cast<double>(pos) * (1.0 / std::pow(10000.0, static_cast<double>(2 * j) / dim));
}

std::vector<double> rope_angle_table(int64_t head_dim, int64_t max_pos) {
  const auto pairs = rope_axis_pairs(head_dim);
  const int64_t c = head_dim / 2;
  std::vector<double> t(static_cast<size_t>(max_pos * c));
  for (int64_t p = 0; p < max_pos; ++p) {
    int64_t col = 0;
    for (int a = 0; a < 3; ++a) {
      for (int64_t j = 0; j < pairs[a]; ++j) t[static_cast<size_t>(p * c + col++)] = rope_angle(p, j, pairs[a]);
    }
  }
  return t;
}

RopeTables make_rope_tables(int64_t head_dim, int64_t f, int64_t h, int64_t w) {
  RopeTables r;
  r.pairs = rope_axis_pairs(head_dim);
  r.extent = {f, h, w};
  for (int a = 0; a < 3; ++a) {
    const size_t n = static_cast<size_t>(r.extent[a] * r.pairs[a]);
    r.cos[a].resize(n);
    r.sin[a].resize(n);
    for (int64_t p = 0; p < r.extent[a]; ++p) {
      for (int64_t j = 0; j < r.pairs[a]; ++j) {
        const double phi = rope_angle(p, j, r.pairs[a]);
        r.cos[a][static_cast<size_t>(p * r.pairs[a] + j)] = std::cos(phi);
        r.sin[a][static_cast<size_t>(p * r.pairs[a] + j)] = std::sin(phi);
      }
    }
  }
  return r;
}

void patchify(float* tokens, const float* x, int64_t C, int64_t F, int64_t H, int64_t W,
              const std::array<int64_t, 3>& patch) {
  const int64_t pt = patch[0], ph = patch[1], pw = patch[2];
  const int64_t f = F / pt, h = H / ph, w = W / pw;
  const int64_t K = C * pt * ph * pw;
  parallel_for_static(f * h * w, [&](int64_t l) {
    const int64_t fi = l / (h * w), hi = (l / w) % h, wi = l % w;
    float* dst = tokens + l * K;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t kt = 0; kt < pt; ++kt)
        for (int64_t kh = 0; kh < ph; ++kh)
          for (int64_t kw = 0; kw < pw; ++kw)
            *dst++ = x[((c * F + fi * pt + kt) * H + hi * ph + kh) * W + wi * pw + kw];
  });
}

void unpatchify(float* out, const float* y, int64_t C, int64_t F, int64_t H, int64_t W,
                const std::array<int64_t, 3>& patch) {
  const int64_t pt = patch[0], ph = patch[1], pw = patch[2];
  const int64_t f = F / pt, h = H / ph, w = W / pw;
  const int64_t K = C * pt * ph * pw;
  parallel_for_static(f * h * w, [&](int64_t l) {
    const int64_t fi = l / (h * w), hi = (l / w) % h, wi = l % w;
    const float* src = y + l * K;
    for (int64_t kt = 0; kt < pt; ++kt)
      for (int64_t kh = 0; kh < ph; ++kh)
        for (int64_t kw = 0; kw < pw; ++kw)
          for (int64_t c = 0; c < C; ++c) out[((c * F + fi * pt + kt) * H + hi * ph + kh) * W + wi * pw + kw] = *src++;
  });
}

}  // namespace vdit::model
