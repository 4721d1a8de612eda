// `vdit decode`: redo the last stage of a generation from saved latents (`latents` [C, F', H', W'] in a
// safetensors file, as --save-latents writes) — load the VAE, stream its frames into a FrameSink. The
// frame rate comes from the caller, else the latents' metadata, else the model default (16).
#pragma once

#include <optional>
#include <string>

#include "dit/core/tensor.h"
#include "dit/pipeline/model_files.h"
#include "dit/pipeline/progress.h"
#include "io/frame_sink.h"

namespace vdit::pipeline {

struct DecodeInputs {
  ModelPathOverrides model;  // only the VAE is needed
  std::string latents_path;
  std::optional<double> fps;
};

struct DecodePlan {
  DecodeInputs inputs;
  ModelFiles files;
  Shape latent_shape;  // [C, F', H', W']
  int frames = 0;      // 1 + 4(F' - 1)
  int height = 0, width = 0;
  double fps = 16;
};

// Header-only checks: the VAE file present, the latents tensor present and 4-D, the fps valid.
Result<DecodePlan> plan_decode(const DecodeInputs& inputs);

// Loads the VAE and decodes into `sink` (created, not opened); aborts the sink on failure.
Result<StageTimings> run_decode(const DecodePlan& plan, FrameSink* sink, const ProgressHandler& progress);

}  // namespace vdit::pipeline
