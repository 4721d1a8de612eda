// Relative-position buckets and T5 attention (fast f32 kernel and double reference).
#include "dit/text/t5_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "dit/core/parallel.h"

namespace vdit::text {
namespace {

// Dot product of two HD-vectors with 8 partial sums (lets the compiler use one 8-wide FMA per step).
inline float dot(const float* a, const float* b, int64_t n) {
  float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t d = 0;
  for (; d + 8 <= n; d += 8) {
    for (int t = 0; t < 8; ++t) part[t] += a[d + t] * b[d + t];
  }
  float s = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  for (; d < n; ++d) s += a[d] * b[d];
  return s;
}

constexpr int64_t kRowsPerTask = 16;  // query rows per parallel task: enough work per task, many tasks at L=512

}  // namespace

int32_t t5_relative_bucket(int64_t r, int64_t num_buckets, int64_t max_distance) {
  // W t5.py _relative_position_bucket (bidirectional); torch evaluates the log branch in float32.
  const int64_t half = num_buckets / 2;
  int64_t bucket = r > 0 ? half : 0;
  const int64_t a = r < 0 ? -r : r;
  const int64_t max_exact = half / 2;
  if (a < max_exact) return static_cast<int32_t>(bucket + a);
  const float ratio = static_cast<float>(a) / static_cast<float>(max_exact);
  const float scale = static_cast<float>(std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)));
  const float large = std::log(ratio) / scale * static_cast<float>(half - max_exact);
  const int64_t v = std::min<int64_t>(max_exact + static_cast<int64_t>(large), half - 1);
  return static_cast<int32_t>(bucket + v);
}

std::vector<int32_t> t5_relative_buckets(int64_t L, int64_t num_buckets, int64_t max_distance) {
  std::vector<int32_t> b(static_cast<size_t>(2 * L - 1));
  for (int64_t r = -(L - 1); r <= L - 1; ++r)
    b[static_cast<size_t>(r + L - 1)] = t5_relative_bucket(r, num_buckets, max_distance);
  return b;
}

void t5_relative_bias(float* out, const float* table, const std::vector<int32_t>& buckets, int64_t num_heads) {
  const int64_t n = static_cast<int64_t>(buckets.size());
  for (int64_t h = 0; h < num_heads; ++h) {
    for (int64_t r = 0; r < n; ++r)
      out[h * n + r] = table[static_cast<int64_t>(buckets[static_cast<size_t>(r)]) * num_heads + h];
  }
}

void t5_attention(const T5AttentionParams& p) {
  const int64_t L = p.L, HD = p.head_dim, NH = p.num_heads, rs = p.row_stride;
  std::vector<int64_t> keys;  // the valid keys, in order
  keys.reserve(static_cast<size_t>(L));
  for (int64_t j = 0; j < L; ++j) {
    if (!p.key_mask || p.key_mask[j]) keys.push_back(j);
  }
  const int64_t nk = static_cast<int64_t>(keys.size());
  const int64_t blocks = (L + kRowsPerTask - 1) / kRowsPerTask;
  parallel_for(NH * blocks, [&](int64_t task) {
    const int64_t h = task / blocks;
    const int64_t i0 = (task % blocks) * kRowsPerTask;
    const int64_t i1 = std::min(L, i0 + kRowsPerTask);
    std::vector<float> scores(static_cast<size_t>(nk));
    std::vector<float> acc(static_cast<size_t>(HD));
    const float* bias_h = p.rel_bias + h * (2 * L - 1);
    for (int64_t i = i0; i < i1; ++i) {
      const float* qi = p.q + i * rs + h * HD;
      const float* bias_i = bias_h + (L - 1 - i);  // bias_i[j] = bias for offset j - i
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t t = 0; t < nk; ++t) {
        const int64_t j = keys[static_cast<size_t>(t)];
        const float s = dot(qi, p.k + j * rs + h * HD, HD) + bias_i[j];
        scores[static_cast<size_t>(t)] = s;
        mx = std::max(mx, s);
      }
      double sum = 0;
      for (int64_t t = 0; t < nk; ++t) {
        const float e = std::exp(scores[static_cast<size_t>(t)] - mx);
        scores[static_cast<size_t>(t)] = e;
        sum += e;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t t = 0; t < nk; ++t) {
        const float w = scores[static_cast<size_t>(t)];
        const float* vj = p.v + keys[static_cast<size_t>(t)] * rs + h * HD;
        for (int64_t d = 0; d < HD; ++d) acc[static_cast<size_t>(d)] += w * vj[d];
      }
      const float inv = static_cast<float>(1.0 / sum);
      float* oi = p.out + i * rs + h * HD;
      for (int64_t d = 0; d < HD; ++d) oi[d] = acc[static_cast<size_t>(d)] * inv;
    }
  });
}

void t5_attention_reference(const T5AttentionParams& p, const float* table, int64_t num_buckets, int64_t max_distance) {
  const int64_t L = p.L, HD = p.head_dim, NH = p.num_heads, rs = p.row_stride;
  std::vector<double> s(static_cast<size_t>(L));
  for (int64_t h = 0; h < NH; ++h) {
    for (int64_t i = 0; i < L; ++i) {
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < L; ++j) {
        if (p.key_mask && !p.key_mask[j]) continue;
        double dotv = 0;
        for (int64_t d = 0; d < HD; ++d) dotv += double(p.q[i * rs + h * HD + d]) * p.k[j * rs + h * HD + d];
        const int32_t b = t5_relative_bucket(j - i, num_buckets, max_distance);
        s[static_cast<size_t>(j)] = dotv + table[b * NH + h];
        mx = std::max(mx, s[static_cast<size_t>(j)]);
      }
      double sum = 0;
      for (int64_t j = 0; j < L; ++j) {
        if (p.key_mask && !p.key_mask[j]) continue;
        s[static_cast<size_t>(j)] = std::exp(s[static_cast<size_t>(j)] - mx);
        sum += s[static_cast<size_t>(j)];
      }
      for (int64_t d = 0; d < HD; ++d) {
        double o = 0;
        for (int64_t j = 0; j < L; ++j) {
          if (p.key_mask && !p.key_mask[j]) continue;
          o += s[static_cast<size_t>(j)] * p.v[j * rs + h * HD + d];
        }
        p.out[i * rs + h * HD + d] = static_cast<float>(o / sum);
      }
    }
  }
}

}  // namespace vdit::text
