// Loads the Wan VAE decoder's weights (plus the top-level `conv2`) from any TensorFile, in the official
// names or the diffusers names, stored f32, bf16 or f16; converts them to f32 GEMM layout. Encoder
// tensors (and `conv1`/`quant_conv`) are ignored. Every expected tensor is checked for presence and
// shape, and decoder tensors the config does not expect are reported, so a config mismatch fails early.
#pragma once

#include <vector>

#include "dit/vae/vae_blocks.h"
#include "io/tensor_file.h"

namespace vdit::vae {

enum class VaeNameLayout { official, diffusers };

const char* vae_name_layout_name(VaeNameLayout layout);

// official when `decoder.conv1.weight` exists, diffusers when `decoder.conv_in.weight` does; else
// not_found with a message saying this is not a Wan VAE decoder.
Result<VaeNameLayout> detect_vae_layout(const TensorFile& file);

// dim (head conv input width) and z_dim (conv2 width) read off the tensors; 0 where absent.
void infer_vae_sizes(const TensorFile& file, VaeNameLayout layout, int64_t* dim, int64_t* z_dim);

// The layers of `specs` with their weights from `file`.
Result<std::vector<VaeLayer>> load_vae_layers(const TensorFile& file, const std::vector<LayerSpec>& specs,
                                              VaeNameLayout layout, const std::string& config_str);

}  // namespace vdit::vae
