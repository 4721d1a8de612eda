// UMT5/T5 encoder hyper-parameters, and the rules that read them off a checkpoint: sizes always come from
// tensor shapes (vocab and dim from the embedding, heads from the relative bias table [buckets, heads],
// attention and FFN widths, layer count); metadata or an HF config.json, where present, must agree with
// them and supplies what shapes cannot tell (max_distance, eps). Official UMT5-XXL: vocab 256384, dim 4096,
// 64 heads, dim_attn 4096, ffn 10240, 24 layers, 32 buckets, max_distance 128, per-layer tables.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "dit/core/status.h"

namespace vdit::text {

struct T5Config {
  int64_t vocab = 0;
  int64_t dim = 0;        // D: model width
  int64_t dim_attn = 0;   // NH * HD: width of q, k, v
  int64_t dim_ffn = 0;    // F: gated-GELU width
  int64_t num_heads = 0;  // NH
  int64_t num_layers = 0;
  int64_t num_buckets = 32;
  int64_t max_distance = 128;
  float eps = 1e-6f;
  bool shared_pos = false;  // one relative-bias table for all layers (UMT5 has one per layer)

  int64_t head_dim() const { return num_heads > 0 ? dim_attn / num_heads : 0; }
  // "vocab 256384, dim 4096, 64 heads x 64, ffn 10240, 24 layers, 32 buckets (per layer), max_distance 128"
  std::string summary() const;
  // Internal consistency (positive sizes, dim_attn divisible by heads, even bucket count, ...).
  Status validate() const;
};

// Cross-checks `config` (from shapes) against string settings from file metadata (`source` names them in
// messages). Recognizes the official names (vocab, dim, dim_attn, dim_ffn, num_heads, num_layers,
// num_buckets, shared_pos, max_dist/max_distance, eps) and HF config.json names (vocab_size, d_model, d_ff,
// num_heads, num_layers, relative_attention_num_buckets, relative_attention_max_distance, layer_norm_epsilon,
// feed_forward_proj); unknown keys are ignored. Sets max_distance and eps when given.
Status apply_t5_settings(T5Config& config, const std::map<std::string, std::string>& settings,
                         const std::string& source);

// Reads an HF config.json into flat string settings for apply_t5_settings (numbers, booleans and strings at
// the top level). Fails on unreadable or malformed JSON.
Result<std::map<std::string, std::string>> read_hf_config_json(const std::string& path);

}  // namespace vdit::text
