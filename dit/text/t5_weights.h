// UMT5 encoder weights from a checkpoint, in either naming (wan.md §2.4): the official Wan names
// (`blocks.{i}.attn.q.weight`, models_t5_umt5-xxl-enc-bf16.pth or safetensors) or HF UMT5 names
// (`encoder.block.{i}.layer.0.SelfAttention.q.weight`, the diffusers text_encoder/ folder, sharded with an
// index). A common prefix (e.g. "text_encoder.") is detected. Decoder and LM-head tensors are ignored.
// This file only finds, checks and (optionally) converts tensors; the forward pass is t5_encoder.cpp.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dit/core/tensor.h"
#include "dit/text/t5_config.h"

namespace vdit {
class TensorFile;
}

namespace vdit::text {

struct T5LoadOptions {
  // true: every layer matrix is held as f32 (a copy when the file stores bf16/f16: 18.5 GB for UMT5-XXL) and
  // encode converts nothing. false: bf16/f16 matrices stay in the (memory-mapped) file and are converted
  // one at a time during encode (memory about the file size; each encode pays the conversion). The token
  // embedding stays in the file's dtype either way; encode converts only the rows it looks up.
  bool weights_f32 = true;
};

struct T5LayerWeights {
  Tensor norm1;     // [D] f32
  Tensor q, k, v;   // [DA, D]  f32, or bf16/f16 when !weights_f32
  Tensor o;         // [D, DA]
  Tensor rel_bias;  // [NB, NH] f32; undefined when the table is shared
  Tensor norm2;     // [D] f32
  Tensor gate;      // [F, D] GELU branch (official ffn.gate.0 = HF wi_0)
  Tensor fc1;       // [F, D] linear branch (HF wi_1)
  Tensor fc2;       // [D, F] (HF wo)
};

struct T5Weights {
  T5Config config;
  std::string layout;      // "official" or "hf"
  std::string source;      // the checkpoint path, for messages
  Tensor token_embedding;  // [V, D] f32, bf16 or f16 (rows are converted when looked up)
  Tensor shared_rel_bias;  // [NB, NH] f32 when config.shared_pos
  std::vector<T5LayerWeights> layers;
  Tensor final_norm;  // [D] f32
};

// Finds the encoder in `file` and reads its config from the shapes, cross-checked against the file's
// metadata and `settings` (e.g. a config.json; may be empty). `source` names the checkpoint in messages.
Result<T5Weights> load_t5_weights(const TensorFile& file, const std::map<std::string, std::string>& settings,
                                  const std::string& source, const T5LoadOptions& options = {});

// Opens a checkpoint: a weight file (.safetensors, .safetensors.index.json, .pth/.pt/.bin) or a folder:
// model.safetensors.index.json, model.safetensors, a text_encoder/ subfolder (diffusers root) or
// models_t5_umt5-xxl-enc-bf16.pth (Wan checkpoint root). An HF config.json next to HF-named weights is
// read and must agree with them.
Result<T5Weights> load_t5_weights(const std::string& path, const T5LoadOptions& options = {});

}  // namespace vdit::text
