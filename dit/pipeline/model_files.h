// Where the four parts of a text-to-video model live: the DiT, the UMT5 text encoder, its tokenizer and
// the VAE. A model folder is recognised in three layouts (the official Wan2.1 release, the diffusers
// repository, and vdit's built-in model), and each part can be overridden by its own path. Only file
// existence is checked here; the loaders (dit/model, dit/text, dit/vae) read and validate the contents.
#pragma once

#include <string>
#include <vector>

#include "dit/core/status.h"

namespace vdit::pipeline {

// Layouts recognised in a model folder:
//   official : diffusion_pytorch_model*.safetensors[.index.json] + config.json,
//              models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth, google/umt5-xxl/spiece.model
//   diffusers: transformer/, text_encoder/, tokenizer/, vae/diffusion_pytorch_model.safetensors
//   built-in : dit.safetensors, text_encoder.safetensors, tokenizer.model, vae.safetensors
struct ModelFiles {
  std::string dir;           // the model folder ("" when every part was given by its own path)
  std::string layout;        // "official", "diffusers", "built-in" or "separate files"
  std::string dit;           // a file, shard index or folder, as model::load_wan_dit takes
  std::string text_encoder;  // a file or folder, as text::T5Encoder::load takes
  std::string tokenizer;     // a sentencepiece file or folder, as text::Tokenizer::load takes
  std::string vae;           // a weight file, as vae::VaeDecoder::load takes
};

// What the caller gave: a folder and/or per-part paths (empty = not given; a part's path wins).
struct ModelPathOverrides {
  std::string dir;
  std::string dit, text_encoder, tokenizer, vae;
};

// Which parts the run needs (precomputed text embeddings need no text encoder or tokenizer; decoding
// saved latents needs only the VAE).
struct ModelParts {
  bool dit = true;
  bool text = true;  // text encoder and tokenizer
  bool vae = true;
};

// Resolves every needed part. Errors (not_found) name the folder, the layout it looked like and the
// missing file, and say which option supplies it.
Result<ModelFiles> locate_model_files(const ModelPathOverrides& given, const ModelParts& needed);

// The built-in model's folder, first existing of: $VDIT_MODEL_DIR, <exe_dir>/../share/vdit/models/vdit-tiny-t2v
// (installed), <exe_dir>/../../../samples/models/vdit-tiny-t2v (build/<name>/bin in the source tree), and
// the source tree's samples/models/vdit-tiny-t2v recorded at configure time. When none exists, the
// first candidate is returned (so the error names a real place to put it). `exe_path`: the running
// program ("" = /proc/self/exe).
std::string default_model_dir(const std::string& exe_path = "");
// The candidates above, in order, for messages.
std::vector<std::string> default_model_dir_candidates(const std::string& exe_path = "");

}  // namespace vdit::pipeline
