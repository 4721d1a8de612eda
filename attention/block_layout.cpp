// BlockLayout index logic: density, validation, diagonal forcing, dense <-> CSR conversion.
// No attention arithmetic here (see block_sparse_cpu.cpp).
#include "attention/block_layout.h"

#include <algorithm>

namespace vdit::attn {

std::string ElementPredicate::describe() const {
  switch (kind) {
    case Kind::none: return "none";
    case Kind::band: return strfmt("band(w=%lld)", static_cast<long long>(half_width));
    case Kind::frame_band:
      return strfmt("frame_band(w=%lld,s=%lld)", static_cast<long long>(half_width),
                    static_cast<long long>(frame_tokens));
  }
  return "?";
}

Status check_block_size(int block) {
  if (block != 64 && block != 128) {
    return invalid_argument(strfmt("block size %d is not supported: use 64 or 128", block));
  }
  return Status::ok();
}

double BlockLayout::block_density() const {
  const int64_t nq = num_q_blocks();
  if (nq == 0) return 0.0;
  const double listed = static_cast<double>(full_idx.size() + part_idx.size());
  return listed / (static_cast<double>(list_heads()) * nq * nq);
}

double BlockLayout::element_density() const {
  const int64_t nb = num_q_blocks(), B = block, L = seq_len;
  if (L == 0) return 0.0;
  double kept = 0;
  for (int h = 0; h < num_heads; ++h) {
    if (head_shared && h > 0 && !(predicate.original_order && has_perm() && !perm_shared())) {
      // Same lists and same predicate indices for every head: count once.
      kept *= static_cast<double>(num_heads);
      break;
    }
    const int32_t* p = predicate.original_order ? perm_of(h) : nullptr;
    for (int64_t qb = 0; qb < nb; ++qb) {
      const int64_t r = row(h, qb), q0 = qb * B, nq = std::min(B, L - q0);
      for (int64_t e = full_ptr[r]; e < full_ptr[r + 1]; ++e) {
        const int64_t k0 = static_cast<int64_t>(full_idx[e]) * B;
        kept += static_cast<double>(nq) * std::min(B, L - k0);
      }
      for (int64_t e = part_ptr[r]; e < part_ptr[r + 1]; ++e) {
        const int64_t k0 = static_cast<int64_t>(part_idx[e]) * B, nk = std::min(B, L - k0);
        for (int64_t i = q0; i < q0 + nq; ++i) {
          for (int64_t j = k0; j < k0 + nk; ++j) {
            kept += predicate.allows(p ? p[i] : i, p ? p[j] : j, L) ? 1 : 0;
          }
        }
      }
    }
  }
  return kept / (static_cast<double>(num_heads) * static_cast<double>(L) * static_cast<double>(L));
}

Status BlockLayout::validate() const {
  VDIT_TRY(check_block_size(block));
  if (seq_len <= 0) return invalid_argument(strfmt("block layout: sequence length %lld must be positive",
                                                   static_cast<long long>(seq_len)));
  if (num_heads <= 0) return invalid_argument(strfmt("block layout: %d heads", num_heads));
  const int64_t R = rows(), nk = num_k_blocks();
  if (static_cast<int64_t>(full_ptr.size()) != R + 1 || static_cast<int64_t>(part_ptr.size()) != R + 1) {
    return invalid_argument(strfmt("block layout: row pointers have %zu/%zu entries, expected %lld", full_ptr.size(),
                                   part_ptr.size(), static_cast<long long>(R + 1)));
  }
  if (full_ptr[0] != 0 || part_ptr[0] != 0 || full_ptr[R] != static_cast<int64_t>(full_idx.size()) ||
      part_ptr[R] != static_cast<int64_t>(part_idx.size())) {
    return invalid_argument("block layout: row pointers do not span the index arrays");
  }
  if (predicate.kind == ElementPredicate::Kind::frame_band && predicate.frame_tokens <= 0) {
    return invalid_argument("block layout: frame_band predicate needs frame_tokens > 0");
  }
  if (predicate.half_width < 0) return invalid_argument("block layout: negative predicate half_width");
  for (int64_t r = 0; r < R; ++r) {
    const int64_t qb = r % num_q_blocks();
    bool diag = false;
    for (int pass = 0; pass < 2; ++pass) {
      const auto& ptr = pass == 0 ? full_ptr : part_ptr;
      const auto& idx = pass == 0 ? full_idx : part_idx;
      if (ptr[r + 1] < ptr[r]) return invalid_argument(strfmt("block layout: row %lld pointers decrease", (long long)r));
      for (int64_t e = ptr[r]; e < ptr[r + 1]; ++e) {
        if (idx[e] < 0 || idx[e] >= nk) {
          return invalid_argument(strfmt("block layout: row %lld lists key block %d outside [0, %lld)", (long long)r,
                                         idx[e], static_cast<long long>(nk)));
        }
        if (e > ptr[r] && idx[e] <= idx[e - 1]) {
          return invalid_argument(strfmt("block layout: row %lld key blocks not strictly increasing", (long long)r));
        }
        diag = diag || idx[e] == qb;
      }
    }
    // Disjointness of the two lists (both sorted: merge walk).
    int64_t a = full_ptr[r], b = part_ptr[r];
    while (a < full_ptr[r + 1] && b < part_ptr[r + 1]) {
      if (full_idx[a] == part_idx[b]) {
        return invalid_argument(strfmt("block layout: row %lld lists key block %d as both full and partial",
                                       (long long)r, full_idx[a]));
      }
      if (full_idx[a] < part_idx[b]) ++a; else ++b;
    }
    if (!diag) {
      return invalid_argument(strfmt("block layout: head row %lld, query block %lld has no diagonal block "
                                     "(every row must keep its self block)",
                                     static_cast<long long>(r / num_q_blocks()), static_cast<long long>(qb)));
    }
  }
  if (!perm.empty()) {
    if (static_cast<int64_t>(perm.size()) != seq_len &&
        static_cast<int64_t>(perm.size()) != static_cast<int64_t>(num_heads) * seq_len) {
      return invalid_argument(strfmt("block layout: perm has %zu entries, expected L=%lld or NH*L=%lld", perm.size(),
                                     static_cast<long long>(seq_len), static_cast<long long>(num_heads * seq_len)));
    }
    const int64_t prows = static_cast<int64_t>(perm.size()) / seq_len;
    std::vector<uint8_t> seen(static_cast<size_t>(seq_len));
    for (int64_t h = 0; h < prows; ++h) {
      std::fill(seen.begin(), seen.end(), 0);
      for (int64_t n = 0; n < seq_len; ++n) {
        const int32_t s = perm[h * seq_len + n];
        if (s < 0 || s >= seq_len || seen[s]) {
          return invalid_argument(strfmt("block layout: perm row %lld is not a permutation of [0, %lld) (entry %lld)",
                                         (long long)h, static_cast<long long>(seq_len), (long long)n));
        }
        seen[s] = 1;
      }
    }
  }
  return Status::ok();
}

void BlockLayout::ensure_diagonal() {
  const int64_t R = rows(), nq = num_q_blocks();
  std::vector<int64_t> nptr(static_cast<size_t>(R + 1), 0);
  std::vector<int32_t> nidx;
  nidx.reserve(full_idx.size() + static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) {
    const int32_t qb = static_cast<int32_t>(r % nq);
    const bool in_part = std::binary_search(part_idx.begin() + part_ptr[r], part_idx.begin() + part_ptr[r + 1], qb);
    const bool in_full = std::binary_search(full_idx.begin() + full_ptr[r], full_idx.begin() + full_ptr[r + 1], qb);
    bool inserted = in_part || in_full;
    for (int64_t e = full_ptr[r]; e < full_ptr[r + 1]; ++e) {
      if (!inserted && full_idx[e] > qb) {
        nidx.push_back(qb);
        inserted = true;
      }
      nidx.push_back(full_idx[e]);
    }
    if (!inserted) nidx.push_back(qb);
    nptr[r + 1] = static_cast<int64_t>(nidx.size());
  }
  full_ptr = std::move(nptr);
  full_idx = std::move(nidx);
}

std::vector<uint8_t> BlockLayout::block_mask() const {
  const int64_t nq = num_q_blocks();
  std::vector<uint8_t> m(static_cast<size_t>(list_heads() * nq * nq), 0);
  for (int64_t r = 0; r < rows(); ++r) {
    for (int64_t e = full_ptr[r]; e < full_ptr[r + 1]; ++e) m[r * nq + full_idx[e]] = 1;
    for (int64_t e = part_ptr[r]; e < part_ptr[r + 1]; ++e) m[r * nq + part_idx[e]] = 1;
  }
  return m;
}

Result<BlockLayout> layout_from_block_states(const std::vector<uint8_t>& states, int list_heads, int num_heads,
                                             int64_t seq_len, int block, const ElementPredicate& predicate,
                                             std::vector<int32_t> perm) {
  VDIT_TRY(check_block_size(block));
  if (list_heads != 1 && list_heads != num_heads) {
    return invalid_argument(strfmt("block states: %d head rows for %d heads (use 1 or %d)", list_heads, num_heads,
                                   num_heads));
  }
  BlockLayout lay;
  lay.block = block;
  lay.seq_len = seq_len;
  lay.num_heads = num_heads;
  lay.head_shared = list_heads == 1;
  lay.predicate = predicate;
  lay.perm = std::move(perm);
  const int64_t nq = lay.num_q_blocks();
  if (static_cast<int64_t>(states.size()) != list_heads * nq * nq) {
    return invalid_argument(strfmt("block states: %zu entries, expected %d x %lld x %lld", states.size(), list_heads,
                                   static_cast<long long>(nq), static_cast<long long>(nq)));
  }
  const int64_t R = lay.rows();
  lay.full_ptr.assign(static_cast<size_t>(R + 1), 0);
  lay.part_ptr.assign(static_cast<size_t>(R + 1), 0);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t qb = r % nq;
    for (int64_t kb = 0; kb < nq; ++kb) {
      uint8_t s = states[r * nq + kb];
      if (s > kBlockPartial) {
        return invalid_argument(strfmt("block states: value %d at row %lld, block %lld (use 0 absent, 1 full, 2 partial)",
                                       s, (long long)r, (long long)kb));
      }
      if (kb == qb && s == kBlockAbsent) s = kBlockFull;  // the self block is always kept
      if (s == kBlockFull) lay.full_idx.push_back(static_cast<int32_t>(kb));
      if (s == kBlockPartial) lay.part_idx.push_back(static_cast<int32_t>(kb));
    }
    lay.full_ptr[r + 1] = static_cast<int64_t>(lay.full_idx.size());
    lay.part_ptr[r + 1] = static_cast<int64_t>(lay.part_idx.size());
  }
  VDIT_TRY(lay.validate());
  return lay;
}

BlockLayout dense_layout(int64_t seq_len, int num_heads, int block) {
  BlockLayout lay;
  lay.block = block;
  lay.seq_len = seq_len;
  lay.num_heads = num_heads;
  lay.head_shared = true;
  const int64_t nq = lay.num_q_blocks();
  lay.full_ptr.resize(static_cast<size_t>(nq + 1));
  lay.part_ptr.assign(static_cast<size_t>(nq + 1), 0);
  for (int64_t r = 0; r <= nq; ++r) lay.full_ptr[r] = r * nq;
  lay.full_idx.resize(static_cast<size_t>(nq * nq));
  for (int64_t r = 0; r < nq; ++r)
    for (int64_t kb = 0; kb < nq; ++kb) lay.full_idx[r * nq + kb] = static_cast<int32_t>(kb);
  return lay;
}

}  // namespace vdit::attn
