// Dense CPU attention: per (head, 64-query tile), keys in 256-token tiles; scores by a small GEMM into a
// [64 x 256] scratch, online softmax with running max/sum, P·V accumulated in f32.
#include "attention/dense_cpu.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "attention/attention.h"
#include "dit/core/parallel.h"
#include "dit/ops/gemm.h"

namespace vdit::attn {
namespace {
constexpr int64_t kQTile = 64;
constexpr int64_t kKTile = 256;
}  // namespace

void dense_attention_cpu(float* out, float* lse, const float* q, const float* k, const float* v, int64_t Lq,
                         int64_t Lk, int NH, int HD, float scale) {
  const int64_t ld = static_cast<int64_t>(NH) * HD;  // token stride
  const int64_t q_tiles = (Lq + kQTile - 1) / kQTile;
  parallel_for(NH * q_tiles, [&](int64_t job) {
    const int64_t h = job / q_tiles;
    const int64_t q0 = (job % q_tiles) * kQTile;
    const int64_t nq = std::min(kQTile, Lq - q0);
    std::vector<float> s(static_cast<size_t>(kQTile * kKTile));   // scores [nq, nk]
    std::vector<float> acc(static_cast<size_t>(kQTile * HD), 0.f);  // [nq, HD]
    std::vector<float> m(static_cast<size_t>(kQTile), -INFINITY), l(static_cast<size_t>(kQTile), 0.f);
    const float* qh = q + q0 * ld + h * HD;
    for (int64_t k0 = 0; k0 < Lk; k0 += kKTile) {
      const int64_t nk = std::min(kKTile, Lk - k0);
      // s[nq, nk] = scale · q[nq, HD] · k[nk, HD]ᵀ (strided rows)
      ops::sgemm(false, true, nq, nk, HD, scale, qh, ld, k + k0 * ld + h * HD, ld, 0.f, s.data(), kKTile);
      for (int64_t i = 0; i < nq; ++i) {
        float* si = s.data() + i * kKTile;
        float mx = m[i];
        for (int64_t j = 0; j < nk; ++j) mx = std::max(mx, si[j]);
        const float corr = std::exp(m[i] - mx);
        float sum = 0.f;
        for (int64_t j = 0; j < nk; ++j) {
          si[j] = std::exp(si[j] - mx);
          sum += si[j];
        }
        l[i] = l[i] * corr + sum;
        m[i] = mx;
        float* ai = acc.data() + i * HD;
        for (int d = 0; d < HD; ++d) ai[d] *= corr;
      }
      // acc[nq, HD] += p[nq, nk] · v[nk, HD]
      ops::sgemm(false, false, nq, HD, nk, 1.f, s.data(), kKTile, v + k0 * ld + h * HD, ld, 1.f, acc.data(), HD);
    }
    for (int64_t i = 0; i < nq; ++i) {
      const float inv = 1.f / l[i];
      float* o = out + (q0 + i) * ld + h * HD;
      for (int d = 0; d < HD; ++d) o[d] = acc[i * HD + d] * inv;
      if (lse) lse[h * Lq + q0 + i] = m[i] + std::log(l[i]);
    }
  });
}

void dense_attention_reference(float* out, float* lse, const float* q, const float* k, const float* v, int64_t Lq,
                               int64_t Lk, int NH, int HD, float scale) {
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  parallel_for(NH * Lq, [&](int64_t job) {
    const int64_t h = job / Lq, i = job % Lq;
    std::vector<double> p(static_cast<size_t>(Lk));
    double mx = -INFINITY;
    for (int64_t j = 0; j < Lk; ++j) {
      double dot = 0;
      for (int d = 0; d < HD; ++d) dot += static_cast<double>(q[i * ld + h * HD + d]) * k[j * ld + h * HD + d];
      p[j] = dot * scale;
      mx = std::max(mx, p[j]);
    }
    double sum = 0;
    for (int64_t j = 0; j < Lk; ++j) sum += (p[j] = std::exp(p[j] - mx));
    for (int d = 0; d < HD; ++d) {
      double a = 0;
      for (int64_t j = 0; j < Lk; ++j) a += p[j] * v[j * ld + h * HD + d];
      out[i * ld + h * HD + d] = static_cast<float>(a / sum);
    }
    if (lse) lse[h * Lq + i] = static_cast<float>(mx + std::log(sum));
  });
}

namespace {
class DenseCpuAttention : public SelfAttention {
 public:
  Status forward(const AttentionCall&, const float* q, const float* k, const float* v, int64_t L, int NH, int HD,
                 float* out) override {
    dense_attention_cpu(out, nullptr, q, k, v, L, L, NH, HD, 1.0f / std::sqrt(static_cast<float>(HD)));
    return Status::ok();
  }
  const char* name() const override { return "dense"; }
};
}  // namespace

std::unique_ptr<SelfAttention> make_dense_cpu_attention() { return std::make_unique<DenseCpuAttention>(); }

}  // namespace vdit::attn
