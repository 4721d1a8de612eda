// Saved latents -> VAE -> frame sink.
#include "dit/pipeline/decode_latents.h"

#include <chrono>
#include <cmath>
#include <cstdlib>

#include "dit/pipeline/latent_files.h"
#include "dit/pipeline/vae_to_sink.h"
#include "dit/vae/vae_decoder.h"
#include "dit/vae/vae_weights.h"
#include "io/tensor_file.h"

namespace vdit::pipeline {

Result<DecodePlan> plan_decode(const DecodeInputs& in) {
  DecodePlan plan;
  plan.inputs = in;
  if (in.latents_path.empty())
    return invalid_argument("no latents: give --latents FILE (written by vdit generate --save-latents)");
  VDIT_ASSIGN(plan.files, locate_model_files(in.model, {false, false, true}));
  {
    VDIT_ASSIGN(auto vae_file, open_tensor_file(plan.files.vae));
    auto layout = vae::detect_vae_layout(*vae_file);
    if (!layout) return layout.status().with_context("VAE " + plan.files.vae);
  }
  VDIT_ASSIGN(auto file, open_tensor_file(in.latents_path));
  VDIT_ASSIGN(plan.latent_shape, peek_latent_shape(in.latents_path, "latents"));
  // The Wan VAE: 1 + 4(F' - 1) frames of 8H' x 8W' (checked again against the loaded VAE's factors).
  plan.frames = static_cast<int>(1 + 4 * (plan.latent_shape[1] - 1));
  plan.height = static_cast<int>(8 * plan.latent_shape[2]);
  plan.width = static_cast<int>(8 * plan.latent_shape[3]);
  plan.fps = 16;
  auto it = file->metadata().find("fps");
  if (it != file->metadata().end()) {
    char* end = nullptr;
    double v = std::strtod(it->second.c_str(), &end);
    if (end && *end == '\0' && std::isfinite(v) && v > 0) plan.fps = v;
  }
  if (in.fps) plan.fps = *in.fps;
  if (!std::isfinite(plan.fps) || plan.fps <= 0 || plan.fps > 1000) {
    return invalid_argument(strfmt("fps %g is outside (0, 1000]", plan.fps));
  }
  return plan;
}

Result<StageTimings> run_decode(const DecodePlan& plan, FrameSink* sink, const ProgressHandler& progress) {
  if (!sink) return invalid_argument("run_decode needs a frame sink");
  const auto start = std::chrono::steady_clock::now();
  StageTimings t;
  if (progress && !progress({Stage::loading, 0, 0, 0}))
    return Status(StatusCode::cancelled, "cancelled before loading");
  auto latents = read_latent_tensor(plan.inputs.latents_path, "latents");
  if (!latents) return latents.status();
  auto vae = vae::VaeDecoder::load(plan.files.vae);
  if (!vae) return vae.status();
  t.load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (latents->value.dim(0) != vae->z_dim()) {
    return invalid_argument(strfmt("%s holds latents with %lld channels but the VAE %s takes %lld",
                                   plan.inputs.latents_path.c_str(), static_cast<long long>(latents->value.dim(0)),
                                   plan.files.vae.c_str(), static_cast<long long>(vae->z_dim())));
  }
  VDIT_TRY(decode_into_sink(*vae, latents->value, plan.fps, sink, progress, &t));
  t.total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return t;
}

}  // namespace vdit::pipeline
