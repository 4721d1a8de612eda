// Wan2.1 DiT hyper-parameters and where they come from. A config is read from a `config.json` beside the
// weights (official `WanModel` keys or diffusers `WanTransformer3DModel` keys), else from the safetensors
// metadata (the official config stringified, as in the tiny goldens), else inferred from tensor shapes;
// every value that the tensors also determine is checked against them. Text-to-video only: i2v/flf2v
// configs are rejected with an `unsupported` status.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "dit/core/tensor.h"

namespace vdit::model {

struct WanDitConfig {
  int64_t dim = 0;        // D: model width
  int64_t ffn_dim = 0;    // Fh: FFN width
  int64_t num_heads = 0;  // NH; head_dim = dim / num_heads
  int64_t num_layers = 0;
  int64_t in_dim = 16;                            // latent channels in
  int64_t out_dim = 16;                           // latent channels out
  int64_t freq_dim = 256;                         // sinusoidal time-embedding width
  int64_t text_dim = 4096;                        // T5 width
  int64_t text_len = 512;                         // the context is zero-padded to this many tokens
  std::array<int64_t, 3> patch_size = {1, 2, 2};  // (t, h, w)
  double eps = 1e-6;
  bool qk_norm = true;          // RMSNorm on q and k (over the full dim)
  bool cross_attn_norm = true;  // affine LayerNorm (`norm3`) before cross-attention

  int64_t head_dim() const { return num_heads > 0 ? dim / num_heads : 0; }
  int64_t patch_volume() const { return patch_size[0] * patch_size[1] * patch_size[2]; }
  std::string to_string() const;  // one line, for logs and messages
};

// Name -> shape of every tensor in a weight file (no data needed; the manifests give the same map).
using TensorShapes = std::map<std::string, Shape>;

enum class WanLayout;  // wan_names.h

// The places a config can come from, in order of precedence.
struct WanDitConfigSources {
  std::string weights_name;                                      // the weights' path, for messages
  std::optional<std::string> config_json_path;                   // read when set
  const std::map<std::string, std::string>* metadata = nullptr;  // safetensors __metadata__ (may be null)
  // head_dim to use when no source gives num_heads (128, as in every released Wan2.1).
  int64_t head_dim_hint = 128;
};

// Builds the config for the tensors in `shapes` (official or diffusers names): config.json first, then
// metadata, then inference from shapes; then validates every value against the shapes and against each
// other. Errors name the source and the value ("config.json says num_layers=30 but the weights hold 2
// blocks"). `unsupported` for model types other than t2v.
Result<WanDitConfig> resolve_wan_dit_config(const TensorShapes& shapes, const WanDitConfigSources& sources);

// Only the inference step: every value the shapes determine (dim, ffn_dim, num_layers, in/out dim,
// freq/text dim, patch size, qk_norm, cross_attn_norm); num_heads = dim / head_dim_hint (left 0 when the
// hint is 0); text_len and eps keep their defaults.
Result<WanDitConfig> infer_wan_dit_config(const TensorShapes& shapes, WanLayout layout, int64_t head_dim_hint = 128);

// Checks internal consistency (positive sizes, dim % num_heads, even head_dim >= 6, text_len >= 1, ...).
Status validate_wan_dit_config(const WanDitConfig& config);

}  // namespace vdit::model
