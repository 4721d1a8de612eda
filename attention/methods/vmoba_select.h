// VMoBA planning (methods.md §2): the layer-wise 1D/2D/3D token partition, chunk-mean gating and the chunk
// selection rules (local + top-k, and cumulative-threshold over a query_head or head_global pool). Pure
// index/score logic on host arrays, so the rules can be tested against the reference goldens directly; the
// attention itself is in vmoba.cpp. Selection is token-granular for queries, as in the reference.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "attention/attention.h"
#include "dit/core/status.h"

namespace vdit::attn {

// Chunks of the rearranged video sequence. Every partition is a box tiling of the (F, H, W) grid: a 1D chunk
// of c frames is the box (c, H, W), a 2D patch (ch, cw) is the box (F, ch, cw), a 3D box is (ct, ch, cw).
// The rearranged order is box-major (boxes in (t, y, x) box order), then (t, y, x) inside a box — the
// reference's `process_moba_input` rearrangement. Boxes at the far edges are clipped when a size does not
// divide the grid (the reference asserts divisibility for 2D/3D; the result is identical when it holds).
struct VmobaPartition {
  std::vector<int32_t> perm;      // [Lv] x_r[n] = x[perm[n]] (video token indices, 0-based)
  std::vector<int64_t> cu_chunk;  // [C + 1] chunk boundaries in the rearranged order
  std::vector<int32_t> chunk_of;  // [Lv] chunk of rearranged position n
  int num_chunks() const { return static_cast<int>(cu_chunk.size()) - 1; }
};

// `box` = (frames, rows, cols) of one chunk; each must be >= 1 (clipped to the grid).
Result<VmobaPartition> vmoba_partition(const VideoGrid& grid, const std::array<int64_t, 3>& box);

// key_gate_weight[c, h, :] = mean of the rearranged keys of chunk c (head h); gate[h][c * Lv + n] =
// <key_gate_weight[c, h], q_r[n, h]> (no scale, no softmax). q/k are [Lv, NH, HD] in the ORIGINAL order
// (video tokens only; `perm` gathers). Accumulated in double, stored in float like the reference's f32 gate.
struct VmobaGates {
  int C = 0, NH = 0, HD = 0;
  int64_t Lv = 0;
  std::vector<float> key_gate_weight;  // [C, NH, HD]
  std::vector<float> gate;             // [NH, C, Lv]
};
VmobaGates vmoba_gates(const VmobaPartition& part, const float* q, const float* k, int64_t Lv, int NH, int HD);

enum class VmobaSelect { topk, threshold };
enum class VmobaPool { query_head, head_global };

struct VmobaSelection {
  VmobaSelect select = VmobaSelect::topk;
  VmobaPool pool = VmobaPool::query_head;
  int topk = 3;             // chunks per query including the self chunk (topk); clamped to C
  double threshold = 0.25;  // tau (threshold)
};

// selected[(c * NH + h) * Lv + n] = 1 when rearranged query n of head h attends chunk c (self chunk always
// included), the reference's `gate_mask` layout [C, NH, Lv]. Ties are broken towards the lower chunk index
// (top-k) / the lower flat index c·Lv + n (head_global); the reference's torch.topk/sort leave them open.
// Threshold rules (min-max normalisation over the pool, eps 1e-6, need = max(tau − self share, 0), sorted
// non-self entries up to the first cumulative share >= need, or all of them if none reaches it) always add
// at least one non-self entry per pool when one exists, as the reference does.
std::vector<uint8_t> vmoba_select(const VmobaPartition& part, const VmobaGates& gates, const VmobaSelection& rule);

}  // namespace vdit::attn
