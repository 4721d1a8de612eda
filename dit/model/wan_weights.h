// The Wan2.1 DiT weights as f32 host tensors, grouped by module. f32 tensors of a memory-mapped file are
// used in place (no copy); bf16/f16/f64 tensors are converted once at load. Does not check names or the
// config: the caller matches the key set first (wan_names.h).
#pragma once

#include <vector>

#include "dit/model/wan_names.h"
#include "io/tensor_file.h"

namespace vdit::model {

struct WanLinear {
  Tensor weight;  // [out, in] (PyTorch Linear layout)
  Tensor bias;    // [out]
};

struct WanAttentionWeights {
  WanLinear q, k, v, o;   // [D, D] each
  Tensor norm_q, norm_k;  // [D] RMSNorm weights over the full D (undefined without qk_norm)
};

struct WanBlockWeights {
  Tensor modulation;  // [1, 6, D]: shift/scale/gate of self-attention, then of the FFN
  WanAttentionWeights self_attn;
  Tensor norm3_weight;  // [D] cross-attention LayerNorm (official `norm3`; undefined without cross_attn_norm)
  Tensor norm3_bias;    // [D]
  WanAttentionWeights cross_attn;
  WanLinear ffn0;  // [Fh, D]
  WanLinear ffn2;  // [D, Fh]
};

struct WanDitWeights {
  WanLinear patch_embedding;  // weight [D, in_dim*pt*ph*pw] (the Conv3d kernel flattened as (c, kt, kh, kw))
  WanLinear text_embedding0;  // [D, text_dim]
  WanLinear text_embedding2;  // [D, D]
  WanLinear time_embedding0;  // [D, freq_dim]
  WanLinear time_embedding2;  // [D, D]
  WanLinear time_projection;  // [6D, D]
  std::vector<WanBlockWeights> blocks;
  Tensor head_modulation;  // [1, 2, D]: shift, scale
  WanLinear head;          // [out_dim*pt*ph*pw, D]
};

// Loads every tensor named in `names` (official name -> file name, from match_wan_dit_tensors) from `file`.
// Float types are converted to f32; other dtypes are a format_error naming the tensor.
Result<WanDitWeights> load_wan_dit_weights(const TensorFile& file, const WanDitConfig& config,
                                           const WanTensorNames& names);

}  // namespace vdit::model
