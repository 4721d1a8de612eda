// Internal: the online-softmax ("flash") inner loop of the CPU attention kernels, on operands packed per
// head (q pre-scaled [Lq_pad, HDp], kᵀ blocked [Lk_pad / B, HDp, B] or plain [HDp, Lk_pad], v [Lk_pad, HDp],
// zero-padded to the block size B and to kHdAlign). One FlashRow instance handles one query block; key blocks are fed one at a time, with an
// optional element mask for partial blocks. Used by dense_cpu.cpp and block_sparse_cpu.cpp only.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "attention/cpu_tiles.h"

namespace vdit::attn::cpu {

struct PackedHead {
  const float* q = nullptr;   // [Lq_pad, HDp], scaled by the softmax scale
  const float* kt = nullptr;  // kt_blocked: [Lk_pad / B, HDp, B] (per key block); else [HDp, Lk_pad]
  const float* v = nullptr;   // [Lk_pad, HDp]
  int64_t Lq = 0, Lk = 0, Lk_pad = 0;
  int HDp = 0;
  // Blocked kᵀ (pack_head with transpose): each block's panel is contiguous, which avoids the cache-set
  // conflicts of a row stride of Lk_pad floats; the plain [HDp, Lk_pad] layout is still accepted.
  bool kt_blocked = false;
};

// Packs head `h` of x[L, NH, HD] (rows gathered through `perm` when non-null) into dst[L_pad, HDp] (times
// `mul`), zero padding; or, with `transpose`, block-transposed into dst[L_pad / block, HDp, block].
void pack_head(float* dst, const float* x, const int32_t* perm, int64_t L, int64_t L_pad, int NH, int HD, int HDp,
               int h, float mul, bool transpose, int block);

class FlashRow {
 public:
  FlashRow(int B, int HDp)
      : B_(B), HDp_(HDp), s_(static_cast<size_t>(B) * B), acc_(static_cast<size_t>(B) * HDp),
        m_(static_cast<size_t>(B)), l_(static_cast<size_t>(B)) {}

  void begin(const PackedHead* head, int64_t q0) {
    head_ = head;
    q0_ = q0;
    nq_ = static_cast<int>(std::min<int64_t>(B_, head->Lq - q0));
    std::fill(m_.begin(), m_.end(), -INFINITY);
    std::fill(l_.begin(), l_.end(), 0.f);
    std::fill(acc_.begin(), acc_.end(), 0.f);
  }

  // Adds key block [k0, k0 + B) (clipped to Lk). `keep(i, j)` (absolute query/key positions in the packed
  // order) decides elements when `masked`; it is not called otherwise.
  template <class Keep>
  void add(int64_t k0, bool masked, const Keep& keep) {
    const int B = B_, HDp = HDp_;
    const int nk = static_cast<int>(std::min<int64_t>(B, head_->Lk - k0));
    float* s = s_.data();
    // s[B, B] = q[q0:q0+B, :] · kᵀ[:, k0:k0+B]
    if (head_->kt_blocked) {
      gemm_tile(s, B, head_->q + q0_ * HDp, HDp, head_->kt + k0 * HDp, B, B, B, HDp, false);
    } else {
      gemm_tile(s, B, head_->q + q0_ * HDp, HDp, head_->kt + k0, head_->Lk_pad, B, B, HDp, false);
    }
    for (int i = 0; i < nq_; ++i) {
      float* si = s + static_cast<int64_t>(i) * B;
      for (int j = nk; j < B; ++j) si[j] = -INFINITY;  // sequence tail
      if (masked) {
        for (int j = 0; j < nk; ++j)
          if (!keep(q0_ + i, k0 + j)) si[j] = -INFINITY;
      }
      v8f mx8 = load8(si);
      for (int j = 8; j < B; j += 8) {
        const v8f x = load8(si + j);
        mx8 = x > mx8 ? x : mx8;
      }
      float mx = mx8[0];
      for (int t = 1; t < 8; ++t) mx = std::max(mx, mx8[t]);
      const float m_new = std::max(m_[i], mx);
      if (m_new == -INFINITY) {  // nothing kept in this row so far
        for (int j = 0; j < B; ++j) si[j] = 0.f;
        continue;
      }
      const float corr = std::exp(m_[i] - m_new);  // exp(-inf) = 0 on the first kept block
      v8f sum8 = splat8(0.f);
      const v8f mv = splat8(m_new);
      for (int j = 0; j < B; j += 8) {
        const v8f p = exp8(load8(si + j) - mv);
        store8(si + j, p);
        sum8 += p;
      }
      float sum = 0.f;
      for (int t = 0; t < 8; ++t) sum += sum8[t];
      l_[i] = l_[i] * corr + sum;
      m_[i] = m_new;
      if (corr != 1.f) {
        float* ai = acc_.data() + static_cast<int64_t>(i) * HDp;
        for (int d = 0; d < HDp; ++d) ai[d] *= corr;
      }
    }
    for (int i = nq_; i < B; ++i) std::fill(s + static_cast<int64_t>(i) * B, s + static_cast<int64_t>(i + 1) * B, 0.f);
    // acc[B, HDp] += p[B, B] · v[k0:k0+B, :]
    gemm_tile(acc_.data(), HDp, s, B, head_->v + k0 * HDp, HDp, B, HDp, B, true);
  }

  int rows() const { return nq_; }
  // Normalized output row i (HDp values; valid after the last add) and its LSE; an empty row gives
  // zeros and -inf.
  float finish_row(int i, float* o, int HD) const {
    const float* ai = acc_.data() + static_cast<int64_t>(i) * HDp_;
    if (l_[i] <= 0.f) {
      for (int d = 0; d < HD; ++d) o[d] = 0.f;
      return -INFINITY;
    }
    const float inv = 1.f / l_[i];
    for (int d = 0; d < HD; ++d) o[d] = ai[d] * inv;
    return m_[i] + std::log(l_[i]);
  }

 private:
  int B_, HDp_;
  const PackedHead* head_ = nullptr;
  int64_t q0_ = 0;
  int nq_ = 0;
  std::vector<float> s_, acc_, m_, l_;
};

// This thread's FlashRow scratch for blocks of B rows and padded head dim HDp, reused across jobs and
// calls (every CPU attention kernel takes its per-thread scratch from here).
FlashRow& thread_flash_row(int B, int HDp);

}  // namespace vdit::attn::cpu
