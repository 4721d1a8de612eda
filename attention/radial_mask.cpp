// Radial block mask: per frame-pair tile, the band half-width and frame skipping of the reference rule,
// then the reference's "strict" shrink (a block is kept when more than 60% of its touched columns have more
// than a third of the block's rows on), OR-ed over tiles. Column counts come from interval arithmetic.
#include "attention/radial_mask.h"

#include <algorithm>
#include <cmath>

#include "attention/block_layout.h"

namespace vdit::attn {
namespace {

int bit_length(int64_t x) {
  int n = 0;
  while (x > 0) {
    ++n;
    x >>= 1;
  }
  return n;
}

// ORs the shrunk mask of one s x s tile (band |k - l| <= w, tile-local indices) placed at token offsets
// (row0, col0) into mask[nB, nB].
void mark_tile(std::vector<uint8_t>& mask, int64_t nB, int64_t L, int B, int64_t row0, int64_t col0, int64_t s,
               int64_t w) {
  for (int64_t qb = row0 / B; qb <= (row0 + s - 1) / B; ++qb) {
    const int64_t ra = std::max(row0, qb * B) - row0, rb = std::min(row0 + s, (qb + 1) * B) - row0;
    const int64_t rows_in_block = std::min<int64_t>(B, L - qb * B);  // the tail block has fewer rows
    for (int64_t kb = col0 / B; kb <= (col0 + s - 1) / B; ++kb) {
      uint8_t& m = mask[static_cast<size_t>(qb * nB + kb)];
      if (m) continue;
      const int64_t ca = std::max(col0, kb * B) - col0, cb = std::min(col0 + s, (kb + 1) * B) - col0;
      const int64_t min_dist = std::max<int64_t>({0, ca - (rb - 1), ra - (cb - 1)});
      if (min_dist > w) continue;
      int64_t nz = 0, hi = 0;
      for (int64_t l = ca; l < cb; ++l) {
        const int64_t lo = std::max(ra, l - w), up = std::min(rb - 1, l + w);
        const int64_t c = up - lo + 1;
        if (c <= 0) continue;
        ++nz;
        if (3 * c > rows_in_block) ++hi;
      }
      if (nz > 0 && 5 * hi > 3 * nz) m = 1;
    }
  }
}

}  // namespace

Result<std::vector<uint8_t>> radial_block_mask(const RadialMaskParams& p) {
  VDIT_TRY(check_block_size(p.block));
  if (p.frames <= 0 || p.frame_tokens <= 0 || p.text_len < 0) {
    return invalid_argument(strfmt("radial mask: need frames > 0 and tokens per frame > 0 (got F=%lld, s=%lld, text=%lld)",
                                   static_cast<long long>(p.frames), static_cast<long long>(p.frame_tokens),
                                   static_cast<long long>(p.text_len)));
  }
  if (!(p.decay > 0) || !std::isfinite(p.decay)) {
    return invalid_argument(strfmt("radial mask: decay %g must be a positive number", p.decay));
  }
  const int B = p.block;
  const int64_t F = p.frames, s = p.frame_tokens, L = p.seq_len(), nB = (L + B - 1) / B;
  const int64_t vb = p.text_first ? p.text_len : 0;
  const double P = std::ldexp(1.0, bit_length(s));  // 2^bitlen(s), e.g. 4096 for s = 3840
  std::vector<uint8_t> mask(static_cast<size_t>(nB * nB), 0);
  for (int64_t i = 0; i < F; ++i) {
    for (int64_t j = 0; j < F; ++j) {
      const int64_t d = i > j ? i - j : j - i;
      int64_t w = s;  // covers the whole tile
      if (!(p.sink && j == 0) && d >= 1) {
        if (d == 1) {
          w = p.legacy_04560d1 ? s / 2 : s;
        } else {
          const double L0 = P / std::ldexp(1.0, bit_length(d));  // pre-decay width
          if (L0 < B) {
            const int64_t every = static_cast<int64_t>(B / L0);
            if (d % every != 0) continue;  // frame skipping
          }
          const double Lg = L0 * p.decay;
          w = Lg >= B ? static_cast<int64_t>(std::floor(Lg)) : B;
        }
      }
      mark_tile(mask, nB, L, B, vb + i * s, vb + j * s, s, w);
    }
  }
  if (p.text_len > 0) {
    const int64_t t0 = p.text_first ? 0 : F * s, t1 = t0 + p.text_len;
    for (int64_t b = t0 / B; b <= (t1 - 1) / B; ++b) {
      for (int64_t x = 0; x < nB; ++x) {
        mask[static_cast<size_t>(b * nB + x)] = 1;  // text queries see everything
        mask[static_cast<size_t>(x * nB + b)] = 1;  // every query sees the text
      }
    }
  }
  for (int64_t b = 0; b < nB; ++b) mask[static_cast<size_t>(b * nB + b)] = 1;
  return mask;
}

}  // namespace vdit::attn
