// The Wan VAE decoder graph as a flat list of top-level layers derived from a VaeConfig, with every
// tensor each layer needs under its official name (W `wan/modules/vae.py`) and its diffusers name
// (D `convert_vae`), and the expected shape. The loader, the shape checks and the manifest test all use
// this one description. No weights and no compute here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dit/core/tensor.h"
#include "dit/vae/vae_config.h"

namespace vdit::vae {

enum class LayerKind {
  conv_1x1,     // top-level `conv2` (diffusers `post_quant_conv`): z_dim -> z_dim, 1x1x1
  causal_conv,  // `decoder.conv1`: CausalConv3d k3
  residual,     // ResidualBlock(in, out)
  attention,    // per-frame single-head AttentionBlock(C)
  upsample2d,   // nearest x2 + Conv2d(C -> C/2, 3)
  upsample3d,   // time_conv (C -> 2C, (3,1,1)) doubling frames 1.., then the upsample2d step
  head,         // RMS_norm, SiLU, CausalConv3d k3 (C -> 3)
};

const char* layer_kind_name(LayerKind kind);

struct TensorSpec {
  std::string name;            // official
  std::string diffusers_name;  // diffusers
  Shape shape;
};

struct LayerSpec {
  LayerKind kind;
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  std::string name;      // official module path, e.g. "decoder.upsamples.4"
  std::string diffusers; // diffusers module path, e.g. "decoder.up_blocks.1.resnets.0"
  std::vector<TensorSpec> tensors;
  // Spatial scale of this layer's output relative to the latent grid (1, 2, 4, 8) and its number of
  // 3x3 spatial convolutions (all run at that scale), for the tiling halo.
  int64_t scale = 1;
  int spatial_convs = 0;
};

// conv2, decoder.conv1, decoder.middle.{0,1,2}, decoder.upsamples.*, decoder.head, in run order.
Result<std::vector<LayerSpec>> decoder_layers(const VaeConfig& config);

// Index of the first layer after the middle block (everything from here on is spatially local, so it can
// be tiled exactly; the middle attention block is global over a frame).
size_t first_local_layer(const std::vector<LayerSpec>& layers);

// Number of temporal doublings (upsample3d layers): T = 1 + (F - 1)·2^n output frames for F latent frames.
int temporal_upsamples(const std::vector<LayerSpec>& layers);
// Spatial factor of the output over the latent grid (8 for Wan2.1).
int64_t spatial_upsample_factor(const std::vector<LayerSpec>& layers);

// Latent pixels of context a tile of layers [first, end) needs on each side for its interior to be exact:
// every 3x3 conv at scale s reaches 1/s latent pixels further (nearest upsampling keeps the reach).
int64_t tiling_halo(const std::vector<LayerSpec>& layers, size_t first);

}  // namespace vdit::vae
