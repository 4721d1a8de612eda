// DraftAttention's planner on the GPU (methods.md §3; the host planner is methods/draft_plan.h): region
// means of q/k (double sums in the host's order, so the pooled values are bit-identical), the softmax draft
// map per head (double dot products and exponentials: equal to the host's up to fused multiply-adds and the
// last bit of exp), the per-head threshold as an exact order statistic of the f32 map (radix select, = the
// host's nth_element on the same map), then the CSR lists built on the device (counts,
// scan, ballot compaction) and consumed by the block-sparse kernel without a host round trip.
// The lists are written into the buffers of a DeviceBlockLayout uploaded once per geometry as an all-full
// skeleton (same L, NH, block and permutation; its capacity bounds every plan). DeviceBlockLayout has no API
// to adopt device-built lists yet, so its host-side summaries (block_density(), listed_elements(),
// max_row_blocks()) describe the skeleton, not the plan: use block_density() of this class instead.
// Exactly tiling grids only (h % ph == 0, w % pw == 0): padded edge regions have no kernel layout.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/cuda/block_sparse_cuda.h"
#include "attention/methods/draft_plan.h"
#include "dit/core/device_buffer.h"

namespace vdit::attn {

class DraftDevicePlanner {
 public:
  // Uploads the geometry (slots, region sizes, launch order) and sizes the buffers for NH heads of HD.
  // Exactly tiling geometries only (geo.aligned); g ≤ 5120 regions.
  Status prepare(const DraftGeometry& geo, int NH, int HD);
  bool prepared_for(const DraftGeometry& geo, int NH, int HD) const;

  // Plans one call on qkv.stream (asynchronous): pooled q/k [g, NH, HD], map [NH, g, g], threshold [NH],
  // CSR lists of the [NH, nb, nb] block mask (text blocks and the diagonal always listed).
  Status plan(const DeviceQKV& qkv, double sparsity);
  // The planned layout for block_sparse_attention_cuda (valid after plan(), on the same stream).
  const DeviceBlockLayout& layout() const { return layout_; }

  // Reads results back (synchronizes `stream`): for tests and statistics.
  Status download(std::vector<float>* map, std::vector<float>* threshold, std::vector<int64_t>* full_ptr,
                  std::vector<int32_t>* full_idx, void* stream) const;
  Result<double> block_density(void* stream) const;  // listed blocks / (NH · nb²)
  // Mean milliseconds of the planning stages over `reps` plans (synchronizes): pool, map, threshold select,
  // row counts + launch order, CSR scan + fill.
  Result<std::vector<double>> profile(const DeviceQKV& qkv, double sparsity, int reps);

  int64_t regions() const { return g_; }

 private:
  Status plan_impl(const DeviceQKV& qkv, double sparsity, void* const* events);

  int64_t g_ = 0, L_ = 0, nb_ = 0, text_len_ = 0;
  int64_t F_ = 0, h_ = 0, w_ = 0, video_begin_ = 0, Hp_ = 0, Wp_ = 0;
  int ph_ = 8, pw_ = 16;
  int block_ = 128, NH_ = 0, HD_ = 0;
  DeviceBlockLayout layout_;  // skeleton whose full_ptr/full_idx plan() overwrites; perm = the region order
  DeviceBuffer pooled_;       // [2, g, NH, HD] f32: q̃ then k̃
  DeviceBuffer map_;          // [NH, g, g] f32
  DeviceBuffer threshold_;    // [NH] f32
  DeviceBuffer counts_;       // [NH · nb] int32
  DeviceBuffer select_state_; // [NH] radix-select state
  DeviceBuffer select_hist_;  // [NH, 2048] uint32
};

}  // namespace vdit::attn
