// Dense CPU attention: per (head, 64-query block) job, all key blocks through the shared online-softmax
// inner loop (cpu_flash.h: hand-written tile kernels, no BLAS inside the threaded region), and a plain
// reference with double accumulation.
#include "attention/dense_cpu.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "attention/attention.h"
#include "attention/cpu_flash.h"
#include "dit/core/parallel.h"

namespace vdit::attn {
namespace {
constexpr int kBlock = 64;
}  // namespace

void dense_attention_cpu(float* out, float* lse, const float* q, const float* k, const float* v, int64_t Lq,
                         int64_t Lk, int NH, int HD, float scale) {
  if (Lq <= 0 || NH <= 0 || HD <= 0) return;
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  const int64_t nqb = (Lq + kBlock - 1) / kBlock, nkb = (Lk + kBlock - 1) / kBlock;
  const int64_t Lq_pad = nqb * kBlock, Lk_pad = nkb * kBlock;
  const int HDp = static_cast<int>(cpu::round_up(HD, cpu::kHdAlign));
  const int64_t want_jobs = 4 * static_cast<int64_t>(std::max(1, num_threads()));
  const int G = static_cast<int>(std::clamp<int64_t>((want_jobs + nqb - 1) / nqb, 1, NH));
  const size_t qe = static_cast<size_t>(Lq_pad) * HDp, ke = static_cast<size_t>(Lk_pad) * HDp;
  std::vector<float> qbuf(G * qe), ktbuf(G * ke), vbuf(G * ke);
  std::vector<cpu::PackedHead> heads(static_cast<size_t>(G));
  auto no_mask = [](int64_t, int64_t) { return true; };
  for (int h0 = 0; h0 < NH; h0 += G) {
    const int g = std::min(G, NH - h0);
    parallel_for(3 * g, [&](int64_t job) {
      const int gi = static_cast<int>(job / 3), which = static_cast<int>(job % 3), h = h0 + gi;
      const float* src = which == 0 ? q : which == 1 ? k : v;
      float* dst = which == 0 ? qbuf.data() + gi * qe : (which == 1 ? ktbuf.data() : vbuf.data()) + gi * ke;
      cpu::pack_head(dst, src, nullptr, which == 0 ? Lq : Lk, which == 0 ? Lq_pad : Lk_pad, NH, HD, HDp, h,
                     which == 0 ? scale : 1.f, which == 1, kBlock);
    });
    for (int gi = 0; gi < g; ++gi) {
      heads[gi] = {qbuf.data() + gi * qe, ktbuf.data() + gi * ke, vbuf.data() + gi * ke, Lq, Lk, Lk_pad, HDp,
                   /*kt_blocked=*/true};
    }
    parallel_for(static_cast<int64_t>(g) * nqb, [&](int64_t job) {
      const int gi = static_cast<int>(job / nqb), h = h0 + gi;
      const int64_t q0 = (job % nqb) * kBlock;
      cpu::FlashRow& fr = cpu::thread_flash_row(kBlock, HDp);
      fr.begin(&heads[gi], q0);
      for (int64_t kb = 0; kb < nkb; ++kb) fr.add(kb * kBlock, false, no_mask);
      for (int i = 0; i < fr.rows(); ++i) {
        const float row_lse = fr.finish_row(i, out + (q0 + i) * ld + static_cast<int64_t>(h) * HD, HD);
        if (lse) lse[static_cast<int64_t>(h) * Lq + q0 + i] = row_lse;
      }
    });
  }
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
