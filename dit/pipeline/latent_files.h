// The tensor files a generation can read or write instead of computing: precomputed text embeddings
// (`context`, `negative_context`), initial noise (`noise`), and the final denoised latent (`latents`,
// with the generation settings as string metadata). All are safetensors; a leading batch dimension of
// 1 is accepted and dropped. Shapes are checked here only for rank and non-emptiness; the pipeline
// checks them against the model.
#pragma once

#include <map>
#include <string>

#include "dit/core/tensor.h"

namespace vdit::pipeline {

struct TextEmbeddings {
  Tensor context;           // [Lc, text_dim] f32
  Tensor negative_context;  // [Ln, text_dim] f32; undefined when the file has none
};

// Reads `context` and, when present, `negative_context` (any float dtype, converted to f32).
Result<TextEmbeddings> read_text_embeddings(const std::string& path);

// Header-only look at a 4-D latent-shaped tensor `name` in `path` ([C, F', H', W'] after dropping a
// batch of 1), for checks before heavy work.
Result<Shape> peek_latent_shape(const std::string& path, const std::string& name);

// Reads the 4-D tensor `name` ("noise" or "latents") as f32 [C, F', H', W'], with the file's metadata.
struct LatentTensor {
  Tensor value;
  std::map<std::string, std::string> metadata;
};
Result<LatentTensor> read_latent_tensor(const std::string& path, const std::string& name);

// Writes `latents` [C, F', H', W'] (f32) as tensor "latents" with `metadata`, atomically.
Status save_latents(const std::string& path, const Tensor& latents, const std::map<std::string, std::string>& metadata);

// Where the latents go when decoding fails after denoising: next to the output, "clip.mp4" ->
// "clip.latents.safetensors", "frames/" -> "frames.latents.safetensors".
std::string recovery_latents_path(std::string output);

}  // namespace vdit::pipeline
