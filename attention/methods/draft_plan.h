// DraftAttention planning (methods.md §3): region geometry (ph x pw windows per frame, one region per block
// of the reordered sequence), average-pooled draft Q/K, the softmax draft map and the per-head global
// top-(1 − r) selection with the reference's rounding. Host arrays only (the method is draft.cpp). Any
// latent size: the pooled grid is ⌈h/ph⌉ x ⌈w/pw⌉ per frame; edge regions pool over the tokens they have
// (avg_pool2d with ceil_mode, as the reference) and are padded to a whole block.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/attention.h"
#include "dit/core/status.h"

namespace vdit::attn {

struct DraftGeometry {
  int64_t F = 0, h = 0, w = 0;  // latent grid
  int ph = 8, pw = 16;          // pooling window (rows, cols)
  int64_t Hp = 0, Wp = 0;       // pooled rows/cols per frame (ceil)
  int64_t g = 0;                // regions = F·Hp·Wp, in (frame, pooled row, pooled col) order
  int block = 128;              // ph·pw: one region per block of the reordered sequence
  int64_t L = 0, text_len = 0, video_begin = 0;
  bool aligned = true;          // h % ph == 0 and w % pw == 0: no pad slots (the reference's case)
  // Reordered sequence: region r occupies slots [r·block, (r+1)·block) (row-major inside the region, -1 =
  // pad), then the text tokens in their order. Without pads this is the reference's reorg_idx.
  std::vector<int32_t> slots;        // [g·block + text_len]
  std::vector<int32_t> restore;      // [L] slot of each original token (the reference's restore_idx)
  std::vector<int32_t> region_size;  // [g] real tokens per region
};

Result<DraftGeometry> draft_geometry(const VideoGrid& grid, int64_t text_len, bool text_first, int ph, int pw);

// The reference's count of excluded draft entries: k = int((1.0 − (1 − r))·n) in double arithmetic
// (forward() passes 1 − r and the mask function subtracts it from 1 again).
int64_t draft_excluded_count(double sparsity, int64_t n);

struct DraftMap {
  int64_t g = 0;
  int NH = 0, HD = 0;
  std::vector<float> q_pooled, k_pooled;  // [g, NH, HD] region means
  std::vector<float> map;                 // [NH, g, g] softmax(q̃ k̃ᵀ/√HD) per head
  std::vector<uint8_t> mask;              // [NH, g, g] map >= threshold (the reference's mask_headwise)
  std::vector<float> threshold;           // [NH] largest of the k smallest entries (-inf: k = 0, +inf: k >= n)
};

// q, k: [L, NH, HD] in the original order. Pooling and scores accumulate in double; the map is rounded to
// float before the selection, like the reference's f32 map.
DraftMap draft_map(const DraftGeometry& geo, const float* q, const float* k, int NH, int HD, double sparsity);

}  // namespace vdit::attn
