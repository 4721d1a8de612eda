// How the pipeline reports where it is and how long each stage took. Library code never prints: the
// caller gets ProgressEvents through a callback (which can also cancel) and a StageTimings at the end.
#pragma once

#include <cstdint>
#include <functional>

namespace vdit::pipeline {

enum class Stage { loading, text_encoder, denoising, vae_decode, finishing };
const char* stage_name(Stage stage);  // "loading", "text encoder", "denoising", "VAE decode", "finishing"

struct ProgressEvent {
  Stage stage = Stage::loading;
  int done = 0;        // denoising: steps done; VAE decode: frames written; else 0 at the start of the stage
  int total = 0;       // denoising: steps; VAE decode: frames; else 0
  double stage_s = 0;  // seconds since the stage started
};

// Called at the start of every stage and after every step / frame. Returning false cancels the run
// (StatusCode::cancelled); the frame sink is then aborted, so no partial output is left.
using ProgressHandler = std::function<bool(const ProgressEvent& event)>;

// Wall time per stage, in seconds. Loading a part is counted in `load_s`, not in its stage.
struct StageTimings {
  double load_s = 0;          // opening and preparing weights (DiT, text encoder, VAE)
  double text_encoder_s = 0;  // tokenizing and encoding both prompts (0 with precomputed embeddings)
  double denoising_s = 0;     // the sampling loop
  double attention_s = 0;     // self-attention inside the sampling loop (part of denoising_s)
  int64_t attention_calls = 0;
  double vae_s = 0;       // VAE decoding, without the time frames spend in the sink
  double encoding_s = 0;  // pixel conversion, image/video encoding and finishing the output
  double total_s = 0;

  double attention_share() const { return denoising_s > 0 ? attention_s / denoising_s : 0.0; }
};

}  // namespace vdit::pipeline
