// block_rows_reference: per-row kept key sets from the full/partial lists (predicate on partial blocks,
// tail clipped), explicit scores and softmax in double, optional rounding of P to the io precision.
#include "attention/cuda/block_sparse_rows_reference.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "dit/core/dtype.h"

namespace vdit::attn {

Status block_rows_reference(float* out, float* lse, int64_t* orig, const BlockLayout& layout, int head, int64_t qb,
                            const HeadRows& in, float scale, RoundP round_p) {
  const int64_t L = layout.seq_len, B = layout.block;
  if (head < 0 || head >= layout.num_heads || qb < 0 || qb >= layout.num_q_blocks()) {
    return invalid_argument(strfmt("block_rows_reference: head %d / query block %lld out of range", head,
                                   static_cast<long long>(qb)));
  }
  const int32_t* perm = layout.perm_of(head);
  auto to_orig = [&](int64_t n) -> int64_t { return perm ? perm[n] : n; };
  const ElementPredicate& pred = layout.predicate;
  const int64_t r = layout.row(head, qb), rows = std::min(B, L - qb * B);
  const int HD = in.HD;
  std::vector<int64_t> keys;  // original indices of the kept keys of one row
  std::vector<double> s, acc(static_cast<size_t>(HD));
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t n = qb * B + i, on = to_orig(n);
    orig[i] = on;
    keys.clear();
    for (int pass = 0; pass < 2; ++pass) {
      const auto& ptr = pass == 0 ? layout.full_ptr : layout.part_ptr;
      const auto& idx = pass == 0 ? layout.full_idx : layout.part_idx;
      for (int64_t e = ptr[r]; e < ptr[r + 1]; ++e) {
        const int64_t k0 = static_cast<int64_t>(idx[e]) * B, k1 = std::min(L, k0 + B);
        for (int64_t m = k0; m < k1; ++m) {
          const bool keep = pass == 0 || (pred.original_order ? pred.allows(on, to_orig(m), L) : pred.allows(n, m, L));
          if (keep) keys.push_back(to_orig(m));
        }
      }
    }
    s.resize(keys.size());
    double mx = -INFINITY;
    const float* qr = in.q + on * in.ld;
    for (size_t j = 0; j < keys.size(); ++j) {
      const float* kr = in.k + keys[j] * in.ld;
      double dot = 0;
      for (int d = 0; d < HD; ++d) dot += static_cast<double>(qr[d]) * kr[d];
      s[j] = dot * scale;
      mx = std::max(mx, s[j]);
    }
    double sum = 0;
    std::fill(acc.begin(), acc.end(), 0.0);
    for (size_t j = 0; j < keys.size(); ++j) {
      const double p = std::exp(s[j] - mx);
      sum += p;
      double pv = p;
      if (round_p == RoundP::bf16) pv = bf16_to_f32(f32_to_bf16(static_cast<float>(p)));
      if (round_p == RoundP::f16) pv = f16_to_f32(f32_to_f16(static_cast<float>(p)));
      const float* vr = in.v + keys[j] * in.ld;
      for (int d = 0; d < HD; ++d) acc[static_cast<size_t>(d)] += pv * vr[d];
    }
    for (int d = 0; d < HD; ++d) out[i * HD + d] = sum > 0 ? static_cast<float>(acc[static_cast<size_t>(d)] / sum) : 0.f;
    lse[i] = sum > 0 ? static_cast<float>(mx + std::log(sum)) : -INFINITY;
  }
  return Status::ok();
}

}  // namespace vdit::attn
