// Checks of the DiT's inputs shared by every backend (CPU, CUDA), so both accept and refuse exactly the same
// things with the same messages: the text context of prepare_text, the latent and timestep of forward.
#pragma once

#include <cstdint>

#include "dit/core/tensor.h"
#include "dit/model/wan_config.h"

namespace vdit::model {

constexpr int64_t kMaxPatchesPerAxis = 1024;  // the official RoPE table has 1024 positions per axis

// context [Lc, text_dim] of any float dtype with Lc <= text_len -> the same values as f32 [Lc, text_dim].
Result<Tensor> checked_text_context(const WanDitConfig& config, const Tensor& context);

// x [in_dim, F, H, W] f32 with F, H, W positive multiples of the patch size and at most kMaxPatchesPerAxis
// patches per axis; timestep in [0, 1000].
Status check_dit_forward_inputs(const WanDitConfig& config, const Tensor& x, int64_t timestep);

}  // namespace vdit::model
