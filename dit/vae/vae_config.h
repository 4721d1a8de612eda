// Wan VAE decoder hyper-parameters and latent normalization, and where they come from: a config JSON
// (official `WanVAE_` keys or diffusers `AutoencoderKLWan` keys), else the safetensors metadata (the
// official config stringified, as in the tiny goldens), else the released config with `dim` and `z_dim`
// read off the tensors. Latent mean/std come from `latents_mean`/`latents_std` (metadata or config) or
// the fixed Wan2.1 constants. Only the decoder side is described; the encoder is never built.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dit/core/status.h"

namespace vdit::vae {

struct VaeConfig {
  int64_t dim = 96;                                       // base width (released: 96; the tiny golden: 16)
  int64_t z_dim = 16;                                     // latent channels
  std::vector<int64_t> dim_mult = {1, 2, 4, 4};           // encoder stage multipliers (decoder reverses them)
  int64_t num_res_blocks = 2;                             // the decoder uses num_res_blocks + 1 per stage
  std::vector<bool> temperal_downsample = {false, true, true};  // official spelling; decoder reverses it
  std::vector<float> latents_mean;                        // [z_dim]; decode input is z·std + mean
  std::vector<float> latents_std;                         // [z_dim]
  std::string normalization_source;                       // "metadata", "config", "wan2.1 constants"

  std::string to_string() const;  // one line, for logs and messages
};

// The released Wan2.1 latent statistics (wan.md §4), 16 channels each.
const std::vector<float>& wan21_latents_mean();
const std::vector<float>& wan21_latents_std();

// Positive sizes, one temporal flag per upsampling stage, even channel counts where a resample halves
// them, mean/std of length z_dim with std > 0.
Status validate_vae_config(const VaeConfig& config);

// Where a config can come from. `metadata` is the weight file's string metadata (may be null);
// `config_json` is the text of a config file (empty when there is none). `inferred_dim` and
// `inferred_z_dim` are read off the tensors by the loader (0 when unknown).
struct VaeConfigSources {
  std::string weights_name;  // for messages
  std::string config_json;
  std::string config_json_name;  // for messages
  const std::map<std::string, std::string>* metadata = nullptr;
  int64_t inferred_dim = 0;
  int64_t inferred_z_dim = 0;
};

// Resolves the config: config JSON first, then metadata, then the inferred values over the released
// defaults; latent statistics from metadata `latents_mean`/`latents_std` (JSON arrays), then the config
// JSON, then the Wan2.1 constants (only when z_dim == 16). `unsupported` for features this decoder does
// not build (attention inside the upsampling stages, Wan2.2's residual/patched VAE).
Result<VaeConfig> resolve_vae_config(const VaeConfigSources& sources);

}  // namespace vdit::vae
