// vdit_generate / vdit_generate_file (vdit.h): C parameters -> pipeline::GenerationInputs, then the same
// plan_generation -> run_generation path as the `vdit generate` command, into memory (MemoryFrameSink) or a
// file sink (written under a temporary name, renamed when complete).
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "dit/api/c_api_status.h"
#include "dit/pipeline/latent_files.h"
#include "dit/pipeline/text_to_video.h"
#include "io/frame_sink.h"
#include "io/memory_sink.h"

namespace vdit::api {
namespace {

std::string str(const char* s) { return s ? std::string(s) : std::string(); }

// The pipeline's request from the C parameters; zero / NULL fields keep the model's defaults.
Result<pipeline::GenerationInputs> inputs_from(const vdit_generate_params* p) {
  if (!p) return invalid_argument("vdit_generate: params is NULL (start from vdit_generate_default_params())");
  if (!p->prompt || !*p->prompt) return invalid_argument("vdit_generate: params.prompt is empty; give a prompt");
  pipeline::GenerationInputs in;
  in.model.dir = str(p->model_dir);
  in.prompt = p->prompt;
  if (p->seed >= 0) in.seed = p->seed;
  pipeline::SettingsRequest& s = in.settings;
  if (p->negative_prompt) s.negative_prompt = std::string(p->negative_prompt);
  if (p->width) s.width = p->width;
  if (p->height) s.height = p->height;
  if (p->frames) s.frames = p->frames;
  if (p->steps) s.steps = p->steps;
  if (p->guidance != 0) s.guidance = p->guidance;
  if (p->shift != 0) s.shift = p->shift;
  if (p->fps != 0) s.fps = p->fps;
  if (p->sampler) s.sampler = std::string(p->sampler);
  if (p->attention) in.attention_method = p->attention;
  in.attention_config = str(p->attention_config);
  if (p->device) in.device = p->device;
  if (p->text_encoder_device) in.text_encoder_device = p->text_encoder_device;
  in.save_latents_path = str(p->save_latents_path);
  return in;
}

pipeline::ProgressHandler progress_from(const vdit_generate_params* p) {
  if (!p->progress) return {};
  vdit_progress_callback cb = p->progress;
  void* user = p->user_data;
  return [cb, user](const pipeline::ProgressEvent& e) {
    return cb(static_cast<vdit_stage>(e.stage), e.done, e.total, e.stage_s, user) != 0;
  };
}

// Plans and runs into `sink` (null: memory); fills `video` when given.
Status generate(const vdit_generate_params* params, const std::string& path, vdit_video* video) {
  const auto t0 = std::chrono::steady_clock::now();
  VDIT_ASSIGN(pipeline::GenerationInputs in, inputs_from(params));
  VDIT_ASSIGN(pipeline::GenerationPlan plan, pipeline::plan_generation(in));
  std::unique_ptr<FrameSink> file_sink;
  MemoryFrameSink memory;
  FrameSink* sink = &memory;
  if (!path.empty()) {
    plan.inputs.recovery_latents_path = pipeline::recovery_latents_path(path);
    const MediaOptions media;
    VDIT_TRY(check_output(path, plan.settings.frames, media));
    VDIT_ASSIGN(file_sink, create_frame_sink(path, media));
    sink = file_sink.get();
  }
  VDIT_ASSIGN(pipeline::GenerationReport report, pipeline::run_generation(plan, sink, progress_from(params)));
  if (!video) return Status::ok();
  const std::vector<uint8_t>& bytes = memory.bytes();
  auto* rgb = static_cast<uint8_t*>(std::malloc(bytes.empty() ? 1 : bytes.size()));
  if (!rgb) return out_of_memory("vdit_generate: no host memory for the frames");
  if (!bytes.empty()) std::memcpy(rgb, bytes.data(), bytes.size());
  video->rgb = rgb;
  video->frames = memory.frames_written();
  video->width = memory.width();
  video->height = memory.height();
  video->fps = memory.fps();
  video->seed = static_cast<int64_t>(report.seed);
  video->seconds_total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  video->seconds_denoising = report.timings.denoising_s;
  video->attention_share = report.timings.attention_share();
  video->attention_density = report.attention_density;
  return Status::ok();
}

}  // namespace
}  // namespace vdit::api

extern "C" {

vdit_generate_params vdit_generate_default_params(void) {
  vdit_generate_params p;
  std::memset(&p, 0, sizeof(p));
  p.seed = -1;
  return p;
}

vdit_status vdit_generate(const vdit_generate_params* params, vdit_video* out) {
  if (!out) return vdit::api::finish(vdit::invalid_argument("vdit_generate: out is NULL"));
  std::memset(out, 0, sizeof(*out));
  return vdit::api::guarded([&] { return vdit::api::generate(params, std::string(), out); });
}

vdit_status vdit_generate_file(const vdit_generate_params* params, const char* path) {
  if (!path || !*path) {
    return vdit::api::finish(vdit::invalid_argument("vdit_generate_file: path is empty; give an output file"));
  }
  return vdit::api::guarded([&] { return vdit::api::generate(params, path, nullptr); });
}

void vdit_video_free(vdit_video* video) {
  if (!video) return;
  std::free(video->rgb);
  std::memset(video, 0, sizeof(*video));
}

}  // extern "C"
