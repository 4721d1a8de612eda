// PAROAttention's six per-head axis orders of the video grid (methods.md §4.1): order o lists the source
// axes from slowest to fastest, 0 FHW (identity), 1 FWH, 2 HWF, 3 HFW, 4 WHF, 5 WFH; e.g. order 2 puts video
// token (f, y, x) at (y·W + x)·F + f. Index arithmetic only (no attention, no plan files).
#pragma once

#include <cstdint>
#include <vector>

#include "attention/attention.h"

namespace vdit::attn {

constexpr int kParoOrders = 6;

// "FHW", "FWH", "HWF", "HFW", "WHF", "WFH"; "?" outside [0, 6).
const char* paro_order_name(int order);

// [Lv] video permutation of `order`: x_perm[n] = x[perm[n]] over the video tokens (0-based video indices).
std::vector<int32_t> paro_video_perm(const VideoGrid& grid, int order);

// [Lv] position of each video token in `order`: pos[perm[n]] = n.
std::vector<int32_t> paro_video_pos(const VideoGrid& grid, int order);

// The reference's convention for a whole sequence with `text_len` text tokens first (text_first) or last:
// text positions are the identity and the video part is permuted in place (`permute_qk`); `inv` is the
// inverse (`permute_attn_out`: x[m] = x_perm[inv[m]]). Both [L].
void paro_sequence_perm(std::vector<int32_t>* perm, std::vector<int32_t>* inv, const VideoGrid& grid, int order,
                        int64_t text_len, bool text_first);

}  // namespace vdit::attn
