// DraftAttention's planner on the GPU (methods.md §3; the host planner is methods/draft_plan.h): region
// means of q/k (double sums, exact for ≤ 128 bf16/f16 values, so the pooled values are bit-identical to the
// host's), the softmax draft map per head (double dot products — FP64 tensor-core MMAs for HD 64/128 — and
// exponentials: equal to the host's up to the order of the products' accumulation, the summation order of
// the row sum and the last bit of exp; the f32 map has matched the host's bit for bit in the tests), the
// per-head threshold
// as an exact order statistic of the f32 map (radix select, = the host's nth_element on the same map), then
// the CSR lists of the gathered call (block_sparse_gathered.h) built on the device and consumed by the
// block-sparse kernel without a host round trip. Any grid: on grids the pooling does not tile exactly, edge
// regions are padded to whole blocks (DraftGeometry::slots, -1 = pad) and every key block holding a pad is
// listed as a masked (part) block; the others are full.
// Per call, three launches: pool (also clears the select scratch), map (+ the first radix-select histogram),
// and one cooperative launch for the rest (two more radix passes, row counts, CSR scan and fill, launch order).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "attention/cuda/block_sparse_gathered.h"
#include "attention/methods/draft_plan.h"
#include "dit/core/device_buffer.h"

namespace vdit::attn {

class DraftDevicePlanner {
 public:
  // Uploads the geometry (slots, pad flags of the blocks) and sizes the buffers for NH heads of HD.
  // g ≤ 5120 regions.
  Status prepare(const DraftGeometry& geo, int NH, int HD);
  bool prepared_for(const DraftGeometry& geo, int NH, int HD) const;

  // Plans one call on qkv.stream (asynchronous): pooled q/k [g, NH, HD], map [NH, g, g], threshold [NH],
  // per-head CSR lists of the [NH, nb, nb] block mask (text blocks and the diagonal always listed; blocks
  // with pad slots in the part lists) and the launch order (per head, longest row first).
  Status plan(const DeviceQKV& qkv, double sparsity);
  // The planned call for block_sparse_gathered_cuda (valid after plan(), on the same stream).
  DeviceGatheredView view() const;

  // The lists as the kernel reads them (rows h · nb + qb).
  struct Lists {
    std::vector<int64_t> full_ptr, part_ptr;
    std::vector<int32_t> full_idx, part_idx, items;
  };
  // Reads results back (synchronizes `stream`): for tests and statistics. Null outputs are skipped.
  Status download(std::vector<float>* map, std::vector<float>* threshold, Lists* lists, void* stream) const;
  Result<double> block_density(void* stream) const;  // listed blocks / (NH · nb²)
  // What the CPU method reports as the call's density: block_density() on exactly tiling grids, else the
  // kept (query, key) token pairs / (NH · L²).
  Result<double> density(void* stream) const;
  // Mean milliseconds of the planning stages over `reps` plans (synchronizes), as (stage, ms) pairs: pool,
  // map (+ histogram), select + lists, then (bracketed) the phases of the select + lists launch as CTA 0 saw
  // them (SM clock at the nominal rate: approximate).
  Result<std::vector<std::pair<std::string, double>>> profile(const DeviceQKV& qkv, double sparsity, int reps);

  int64_t regions() const { return g_; }
  int64_t positions() const { return Lp_; }
  int64_t num_blocks() const { return nb_; }

 private:
  Status plan_impl(const DeviceQKV& qkv, double sparsity, void* const* events);

  int64_t g_ = 0, L_ = 0, Lp_ = 0, nb_ = 0, text_len_ = 0;
  int64_t F_ = 0, h_ = 0, w_ = 0, video_begin_ = 0, Hp_ = 0, Wp_ = 0;
  int ph_ = 8, pw_ = 16;
  int block_ = 128, NH_ = 0, HD_ = 0;
  bool aligned_ = true;
  int select_ctas_ = 1;              // CTAs per head of the cooperative select + lists launch
  std::vector<int32_t> block_real_;  // [nb] real tokens per block (host, for density())
  DeviceBuffer slots_;        // [Lp] int32
  DeviceBuffer block_pad_;    // [nb] uint8: 1 = the block holds a pad slot
  DeviceBuffer pooled_;       // [2, g, NH, HD] f32: q̃ then k̃
  DeviceBuffer map_;          // [NH, g, g] f32
  DeviceBuffer threshold_;    // [NH] f32
  DeviceBuffer scratch_;      // radix-select histograms [3, NH, 2048] u32, then per-head list totals [NH, 2] u64
  DeviceBuffer counts_;       // [NH · nb] int2: full, part blocks per row
  DeviceBuffer full_ptr_, part_ptr_;  // [NH · nb + 1] int64
  DeviceBuffer full_idx_, part_idx_;  // capacity NH · nb · (unpadded | padded blocks) int32
  DeviceBuffer items_;                // [NH · nb] int32
  DeviceBuffer stamps_;               // clock64() stamps of the select + lists launch (profile())
};

}  // namespace vdit::attn
