// Operand packing for the CPU flash kernels (see cpu_flash.h): gather one head out of [L, NH, HD], apply
// the permutation and the softmax scale, zero-pad to the block size and the aligned head dim.
#include "attention/cpu_flash.h"

#include <memory>

namespace vdit::attn::cpu {

void pack_head(float* dst, const float* x, const int32_t* perm, int64_t L, int64_t L_pad, int NH, int HD, int HDp,
               int h, float mul, bool transpose, int block) {
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  if (!transpose) {
    for (int64_t n = 0; n < L_pad; ++n) {
      float* d = dst + n * HDp;
      if (n >= L) {
        std::fill(d, d + HDp, 0.f);
        continue;
      }
      const float* s = x + (perm ? static_cast<int64_t>(perm[n]) : n) * ld + static_cast<int64_t>(h) * HD;
      for (int c = 0; c < HD; ++c) d[c] = s[c] * mul;
      for (int c = HD; c < HDp; ++c) d[c] = 0.f;
    }
    return;
  }
  std::fill(dst, dst + static_cast<int64_t>(HDp) * L_pad, 0.f);
  for (int64_t n = 0; n < L; ++n) {
    const float* s = x + (perm ? static_cast<int64_t>(perm[n]) : n) * ld + static_cast<int64_t>(h) * HD;
    float* d = dst + (n / block) * static_cast<int64_t>(HDp) * block + n % block;  // [blk, c, n % block]
    for (int c = 0; c < HD; ++c) d[static_cast<int64_t>(c) * block] = s[c] * mul;
  }
}

FlashRow& thread_flash_row(int B, int HDp) {
  thread_local std::unique_ptr<FlashRow> row;
  thread_local int row_b = 0, row_hd = 0;
  if (!row || row_b != B || row_hd != HDp) {
    row = std::make_unique<FlashRow>(B, HDp);
    row_b = B;
    row_hd = HDp;
  }
  return *row;
}

}  // namespace vdit::attn::cpu
