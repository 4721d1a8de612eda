// Block-sparse attention on the CPU: the fast kernel (heads packed in groups, one job per (head, query
// block), only listed key blocks visited) and the dense-masked double-precision reference.
#include "attention/block_sparse_cpu.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "attention/cpu_flash.h"
#include "dit/core/parallel.h"

namespace vdit::attn {
namespace {

Status check_call(const BlockLayout& layout, int64_t L, int NH, int HD) {
  if (L <= 0 || NH <= 0 || HD <= 0) {
    return invalid_argument(strfmt("block-sparse attention: bad sizes L=%lld NH=%d HD=%d", static_cast<long long>(L),
                                   NH, HD));
  }
  if (layout.seq_len != L || layout.num_heads != NH) {
    return invalid_argument(strfmt("block-sparse attention: layout is for L=%lld NH=%d but the call has L=%lld NH=%d",
                                   static_cast<long long>(layout.seq_len), layout.num_heads,
                                   static_cast<long long>(L), NH));
  }
  return layout.validate();
}

}  // namespace

Status block_sparse_attention_cpu(float* out, float* lse, const BlockLayout& layout, const float* q, const float* k,
                                  const float* v, int64_t L, int NH, int HD, float scale,
                                  const SparseEpilogue& epilogue) {
  VDIT_TRY(check_call(layout, L, NH, HD));
  const int B = layout.block;
  const int64_t nb = layout.num_q_blocks(), Lp = nb * B, ld = static_cast<int64_t>(NH) * HD;
  const int HDp = static_cast<int>(cpu::round_up(HD, cpu::kHdAlign));
  // Heads are packed in groups large enough to give every thread several jobs.
  const int64_t want_jobs = 4 * static_cast<int64_t>(std::max(1, num_threads()));
  const int G = static_cast<int>(std::clamp<int64_t>((want_jobs + nb - 1) / nb, 1, NH));
  const size_t head_elems = static_cast<size_t>(Lp) * HDp;
  std::vector<float> qbuf(G * head_elems), ktbuf(G * head_elems), vbuf(G * head_elems);
  std::vector<cpu::PackedHead> heads(static_cast<size_t>(G));
  const ElementPredicate& pred = layout.predicate;

  for (int h0 = 0; h0 < NH; h0 += G) {
    const int g = std::min(G, NH - h0);
    parallel_for(3 * g, [&](int64_t job) {
      const int gi = static_cast<int>(job / 3), which = static_cast<int>(job % 3), h = h0 + gi;
      const int32_t* perm = layout.perm_of(h);
      float* dst = (which == 0 ? qbuf : which == 1 ? ktbuf : vbuf).data() + gi * head_elems;
      cpu::pack_head(dst, which == 0 ? q : which == 1 ? k : v, perm, L, Lp, NH, HD, HDp, h, which == 0 ? scale : 1.f,
                     which == 1, B);
    });
    for (int gi = 0; gi < g; ++gi) {
      heads[gi] = {qbuf.data() + gi * head_elems, ktbuf.data() + gi * head_elems, vbuf.data() + gi * head_elems,
                   L, L, Lp, HDp, /*kt_blocked=*/true};
    }
    parallel_for(static_cast<int64_t>(g) * nb, [&](int64_t job) {
      const int gi = static_cast<int>(job / nb), h = h0 + gi;
      const int64_t qb = job % nb, r = layout.row(h, qb), q0 = qb * B;
      const int32_t* perm = layout.perm_of(h);
      const int32_t* pred_perm = pred.original_order ? perm : nullptr;
      cpu::FlashRow& fr = cpu::thread_flash_row(B, HDp);
      fr.begin(&heads[gi], q0);
      auto keep = [&](int64_t i, int64_t j) {
        return pred_perm ? pred.allows(pred_perm[i], pred_perm[j], L) : pred.allows(i, j, L);
      };
      for (int64_t e = layout.full_ptr[r]; e < layout.full_ptr[r + 1]; ++e) {
        fr.add(static_cast<int64_t>(layout.full_idx[e]) * B, false, keep);
      }
      const bool masked = pred.kind != ElementPredicate::Kind::none;
      for (int64_t e = layout.part_ptr[r]; e < layout.part_ptr[r + 1]; ++e) {
        fr.add(static_cast<int64_t>(layout.part_idx[e]) * B, masked, keep);
      }
      for (int i = 0; i < fr.rows(); ++i) {
        const int64_t n = q0 + i, orig = perm ? perm[n] : n;
        float* o = out + orig * ld + static_cast<int64_t>(h) * HD;
        const float row_lse = fr.finish_row(i, o, HD);
        if (lse) lse[static_cast<int64_t>(h) * L + orig] = row_lse;
        if (epilogue.rho) {
          const float rho = epilogue.rho[static_cast<int64_t>(h) * L + orig];
          for (int d = 0; d < HD; ++d) o[d] *= rho;
        }
        if (epilogue.residual) {
          const float* res = epilogue.residual + orig * ld + static_cast<int64_t>(h) * HD;
          for (int d = 0; d < HD; ++d) o[d] += res[d];
        }
      }
    });
  }
  return Status::ok();
}

std::vector<uint8_t> expand_element_mask(const BlockLayout& layout, int head) {
  const int64_t L = layout.seq_len, B = layout.block, nb = layout.num_q_blocks();
  std::vector<uint8_t> mask(static_cast<size_t>(L * L), 0);
  const int32_t* perm = layout.perm_of(head);
  const ElementPredicate& pred = layout.predicate;
  auto orig = [&](int64_t n) -> int64_t { return perm ? perm[n] : n; };
  for (int64_t qb = 0; qb < nb; ++qb) {
    const int64_t r = layout.row(head, qb);
    for (int pass = 0; pass < 2; ++pass) {
      const auto& ptr = pass == 0 ? layout.full_ptr : layout.part_ptr;
      const auto& idx = pass == 0 ? layout.full_idx : layout.part_idx;
      for (int64_t e = ptr[r]; e < ptr[r + 1]; ++e) {
        const int64_t k0 = static_cast<int64_t>(idx[e]) * B;
        for (int64_t i = qb * B; i < std::min(L, (qb + 1) * B); ++i) {
          for (int64_t j = k0; j < std::min(L, k0 + B); ++j) {
            bool keep = true;
            if (pass == 1) keep = pred.original_order ? pred.allows(orig(i), orig(j), L) : pred.allows(i, j, L);
            if (keep) mask[static_cast<size_t>(orig(i) * L + orig(j))] = 1;
          }
        }
      }
    }
  }
  return mask;
}

Status block_sparse_attention_reference(float* out, float* lse, const BlockLayout& layout, const float* q,
                                        const float* k, const float* v, int64_t L, int NH, int HD, float scale,
                                        const SparseEpilogue& epilogue) {
  VDIT_TRY(check_call(layout, L, NH, HD));
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  for (int h = 0; h < NH; ++h) {
    const std::vector<uint8_t> mask = expand_element_mask(layout, h);  // [L, L], original order
    parallel_for(L, [&](int64_t i) {
      std::vector<double> p(static_cast<size_t>(L));
      double mx = -INFINITY;
      for (int64_t j = 0; j < L; ++j) {
        if (!mask[static_cast<size_t>(i * L + j)]) continue;
        double dot = 0;
        for (int d = 0; d < HD; ++d) dot += static_cast<double>(q[i * ld + h * HD + d]) * k[j * ld + h * HD + d];
        p[j] = dot * scale;
        mx = std::max(mx, p[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < L; ++j) {
        p[j] = mask[static_cast<size_t>(i * L + j)] ? std::exp(p[j] - mx) : 0.0;
        sum += p[j];
      }
      const double rho = epilogue.rho ? epilogue.rho[static_cast<int64_t>(h) * L + i] : 1.0;
      for (int d = 0; d < HD; ++d) {
        double a = 0;
        for (int64_t j = 0; j < L; ++j) a += p[j] * v[j * ld + h * HD + d];
        double o = sum > 0 ? rho * a / sum : 0.0;
        if (epilogue.residual) o += epilogue.residual[i * ld + h * HD + d];
        out[i * ld + h * HD + d] = static_cast<float>(o);
      }
      if (lse) lse[static_cast<int64_t>(h) * L + i] = sum > 0 ? static_cast<float>(mx + std::log(sum)) : -INFINITY;
    });
  }
  return Status::ok();
}

}  // namespace vdit::attn
