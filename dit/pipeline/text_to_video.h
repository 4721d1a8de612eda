// Text-to-video generation end to end: prompt -> UMT5 context (or precomputed embeddings) -> seeded
// counter-based noise (or a noise file) -> denoising loop with the DiT and the chosen attention method
// -> optional saved latents -> streaming VAE decode into a FrameSink. Two phases: plan_generation does
// every check that needs no weights (model files, settings, shapes of the optional inputs, attention
// config) so mistakes fail in milliseconds; run_generation does the work. Progress and cancellation go
// through a callback; nothing is printed. Media encoding itself belongs to the sink (io/).
//
//   GenerationInputs in;  in.model.dir = "Wan2.1-T2V-1.3B";  in.prompt = "a cat surfing";
//   VDIT_ASSIGN(auto plan, plan_generation(in));
//   VDIT_ASSIGN(auto sink, create_frame_sink("cat.mp4", {}));
//   VDIT_ASSIGN(auto report, run_generation(plan, sink.get(), on_progress));
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "attention/attention.h"
#include "dit/core/tensor.h"
#include "dit/model/wan_config.h"
#include "dit/pipeline/generation_settings.h"
#include "dit/pipeline/model_files.h"
#include "dit/pipeline/progress.h"
#include "io/frame_sink.h"

namespace vdit::pipeline {

struct GenerationInputs {
  ModelPathOverrides model;
  std::string prompt;
  SettingsRequest settings;
  std::optional<int64_t> seed;  // absent or < 0: a random seed (reported back)
  std::string embeds_path;      // safetensors `context` / `negative_context`: skips the text encoder
  std::string noise_path;       // safetensors `noise` [C, F', H', W']: replaces the seeded noise; sets the size
  std::string save_latents_path;
  // Where to save the sampled latents when decoding fails after denoising (and --save-latents did not already
  // keep them), so the VAE stage can be redone with `vdit decode`; empty: not saved.
  std::string recovery_latents_path;
  std::string attention_method = "dense";
  std::string attention_config;          // JSON text (starting with '{') or a JSON file; empty: the method's preset
  bool attention_quality_stats = false;  // recall / error against dense per call (one extra dense pass each)
  std::string device = "cpu";            // DiT: cpu | cuda
  std::string text_encoder_device = "cpu";
  // Calibration runs (e.g. `vdit calibrate paro --model`): this attention object (not owned) replaces the
  // method named above, and the run stops after denoising (no VAE; `sink` may then be null).
  attn::SelfAttention* attention_override = nullptr;
  bool skip_decode = false;
};

// A checked, fully resolved request.
struct GenerationPlan {
  GenerationInputs inputs;
  ModelFiles files;
  GenerationSettings settings;
  uint64_t seed = 0;
  bool seed_was_random = false;
  model::WanDitConfig dit_config;
  nlohmann::json attention_config;  // parsed; null when none was given
};

// Every check that needs no weights: a prompt or embeddings (not both), the model parts present, the
// DiT header (metadata defaults, config), settings resolved and range-checked, the noise and embedding
// shapes against the model and the size, the attention method and config, the devices, and the
// folder of --save-latents. Reads only file headers.
Result<GenerationPlan> plan_generation(const GenerationInputs& inputs);

// GPU memory of a run that used the GPU (--device cuda or --text-encoder-device cuda): the peak of vdit's own
// buffers in each stage (dit/core/device_buffer.h) and the most the device had in use at a stage's end
// (cudaMemGetInfo: includes the CUDA context, cuBLASLt/cuDNN and other processes).
struct GpuMemoryReport {
  bool used = false;
  size_t text_encoder_peak = 0;
  size_t denoising_peak = 0;  // DiT weights, activations, text conditioning, attention layouts
  size_t vae_peak = 0;
  size_t device_used_max = 0;
  size_t device_total = 0;
};

struct GenerationReport {
  StageTimings timings;
  GpuMemoryReport gpu_memory;
  uint64_t seed = 0;
  Shape latent_shape;  // [C, F', H', W']
  int frames_written = 0;
  std::string attention_name;
  double attention_density = 1.0;  // mean over the self-attention calls (1 for a call run dense)
  int64_t attention_dense_calls = 0;  // calls the method's schedule ran dense (warm-up steps, dense layers)
  nlohmann::json attention_stats;  // StatsCollector JSON when quality statistics were on, else null
};

// Runs the plan, streaming frames into `sink` (created, not opened). On failure or cancellation the
// sink is aborted. `progress` may be empty.
Result<GenerationReport> run_generation(const GenerationPlan& plan, FrameSink* sink, const ProgressHandler& progress);

// The string metadata stored with --save-latents (settings, prompt, seed, attention, model).
std::map<std::string, std::string> generation_metadata(const GenerationPlan& plan);

}  // namespace vdit::pipeline
