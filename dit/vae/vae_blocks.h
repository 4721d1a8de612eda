// The Wan VAE decoder's layers as frame-in, frames-out steps: each consumes one frame [C, H, W] and emits
// 0..2 frames, keeping the causal history it needs in a LayerState (W `vae.py`: CausalConv3d with its
// 2-frame cache, ResidualBlock, AttentionBlock, Resample). Weights are immutable and shared by any
// number of concurrent decodes; the states belong to one decode (or one tile of one decode).
#pragma once

#include <vector>

#include "dit/vae/vae_layout.h"
#include "dit/vae/vae_ops.h"

namespace vdit::vae {

struct VaeLayer {
  LayerSpec spec;
  ConvWeights conv;       // conv_1x1 / causal_conv: the conv; residual: conv1; head: the output conv;
                          // upsample*: the 3x3 resample conv
  ConvWeights conv2;      // residual: conv2
  ConvWeights shortcut;   // residual with in != out: 1x1x1 shortcut (co == 0 when absent)
  ConvWeights time_conv;  // upsample3d: (3,1,1) C -> 2C
  Tensor gamma1;          // residual: norm1 [Cin]; attention: norm [C]; head: norm [C]
  Tensor gamma2;          // residual: norm2 [Cout]
  Tensor qkv_w, qkv_b;    // attention: [3C, C], [3C]
  Tensor proj_w, proj_b;  // attention: [C, C], [C]
};

// What one layer remembers between frames.
struct LayerState {
  FrameHistory hist1;      // causal_conv / head / residual conv1 / upsample3d time_conv input history
  FrameHistory hist2;      // residual conv2 input history
  bool seen_first = false; // upsample3d: frame 0 passes its time step unchanged
};

// Runs `layer` on one frame x [Cin, H, W]; appends the emitted frames ([Cout, H', W']) to `out`.
Status layer_forward(std::vector<Tensor>* out, const VaeLayer& layer, LayerState* state, const Tensor& x);

}  // namespace vdit::vae
