// PARO plan files: safetensors with `order` int32 [layers, heads] (0..5 = FHW, FWH, HWF, HFW, WHF, WFH,
// slowest axis first) and `block_mask` uint8 [groups, layers, heads, nQ, nK] over blocks of each head's
// permuted VIDEO tokens (text is always computed), metadata "grid" [F, H, W], "text", "block", "steps".
// nQ = ⌈Lv/block⌉, or ⌊Lv/block⌋ leaving the Lv mod block tail dense (PAROAttentionMap's layout); step s of
// N uses group ⌊s·G/N⌋. I/O and validation only (method: methods/paro.cpp, calibration: paro_calibrate.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "dit/core/tensor.h"

namespace vdit::attn {

struct ParoPlan {
  int groups = 1, layers = 1, heads = 1;
  int block = 64;
  int64_t nq = 0;            // blocks per side of every mask
  VideoGrid grid;            // latent grid the plan was made for
  int64_t text_len = 0;      // text tokens of the calibrated calls (rows/cols always computed)
  int steps = 0;             // denoising steps of the calibration run (0: unknown; informational)
  std::vector<int32_t> order;  // [layers, heads]
  Tensor block_mask;           // uint8 [groups, layers, heads, nq, nq]; may share a mapped file
  std::map<std::string, std::string> metadata;  // everything else the file carried (density, source, ...)

  int order_of(int layer, int head) const { return order[static_cast<size_t>(layer) * heads + head]; }
  // [nq, nq] row-major mask of (group, layer, head); nonzero = computed.
  const uint8_t* mask(int group, int layer, int head) const;
  // Blocks that cover video tokens entirely inside the plan (nq = ⌊Lv/block⌋ leaves a dense tail).
  int64_t video_blocks() const { return (grid.tokens() + block - 1) / block; }
};

// Checks dtypes, shapes, order values, block size, that nq is ⌈Lv/block⌉ or ⌊Lv/block⌋ and that metadata
// and tensors agree. Messages name the file (`what`) and the offending value.
Status validate_paro_plan(const ParoPlan& plan, const std::string& what);

// Opens a plan (block_mask stays memory-mapped). Errors: missing tensors or metadata, wrong dtypes/shapes,
// orders outside 0..5, a block size other than 64/128.
Result<ParoPlan> load_paro_plan(const std::string& path);

// Writes `plan` in the format above, atomically; plan.metadata entries are added to the file's metadata.
Status save_paro_plan(const std::string& path, const ParoPlan& plan);

// The mask group of denoising step `step` of `num_steps`: ⌊step·G/N⌋, clamped to [0, G); 0 when N <= 0.
int paro_step_group(int step, int num_steps, int groups);

}  // namespace vdit::attn
