// `vdit generate`: text to video (or one image) with a Wan2.1-style model. Parses the options, runs
// every check that needs no weights first (prompt, model files, settings, output path), then the
// pipeline with a progress line, and prints a summary of time per stage. The output kind follows the
// extension of -o (see io/frame_sink.h). The work itself is dit/pipeline/text_to_video.h.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "dit/pipeline/latent_files.h"
#include "dit/pipeline/text_to_video.h"
#include "io/frame_sink.h"
#include "tools/vdit/command.h"
#include "tools/vdit/progress_bar.h"

namespace vdit::cli {
namespace {

struct GenerateOptions {
  pipeline::GenerationInputs in;
  std::string prompt_file;
  std::string negative_prompt;
  int frames = 0, height = 0, width = 0, steps = 0, crf = -1;
  double guidance = 0, shift = 0, fps = 0;
  std::string sampler;
  int64_t seed = -1;
  std::string output;
  bool quiet = false;
  // Set by CLI11; an option left out keeps the model's or Wan's default.
  CLI::Option *o_negative = nullptr, *o_frames = nullptr, *o_height = nullptr, *o_width = nullptr, *o_steps = nullptr,
              *o_guidance = nullptr, *o_shift = nullptr, *o_sampler = nullptr, *o_fps = nullptr, *o_seed = nullptr;
};

Status read_prompt_file(std::string* out, const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found("--prompt-file \"" + path + "\" cannot be read (missing file or no permission)");
  std::stringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  while (!out->empty() && (out->back() == '\n' || out->back() == '\r' || out->back() == ' ' || out->back() == '\t'))
    out->pop_back();
  if (out->empty()) return invalid_argument("--prompt-file \"" + path + "\" is empty");
  return Status::ok();
}

// Fills the pipeline request from the parsed options; only what the user gave is set.
Status collect_inputs(GenerateOptions& o) {
  if (!o.prompt_file.empty()) {
    if (!o.in.prompt.empty()) return invalid_argument("give either --prompt or --prompt-file, not both");
    VDIT_TRY(read_prompt_file(&o.in.prompt, o.prompt_file));
  }
  pipeline::SettingsRequest& r = o.in.settings;
  if (o.o_negative->count()) r.negative_prompt = o.negative_prompt;
  if (o.o_frames->count()) r.frames = o.frames;
  if (o.o_height->count()) r.height = o.height;
  if (o.o_width->count()) r.width = o.width;
  if (o.o_steps->count()) r.steps = o.steps;
  if (o.o_guidance->count()) r.guidance = o.guidance;
  if (o.o_shift->count()) r.shift = o.shift;
  if (o.o_sampler->count()) r.sampler = o.sampler;
  if (o.o_fps->count()) r.fps = o.fps;
  if (o.o_seed->count()) o.in.seed = o.seed;
  return Status::ok();
}

void print_attention_stats(const nlohmann::json& stats, const std::string& method) {
  if (!stats.is_object() || !stats.contains("summary")) return;
  const auto& s = stats["summary"];
  auto num = [&](const char* key) { return s.contains(key) && s[key].is_number() ? s[key].get<double>() : -1.0; };
  std::fprintf(stderr, "attention %s: %lld calls (%lld dense), mean density %.3f, %.2f s", method.c_str(),
               static_cast<long long>(num("calls")), static_cast<long long>(num("dense_calls")), num("mean_density"),
               num("seconds"));
  if (num("mean_recall") >= 0) std::fprintf(stderr, ", mean recall %.4f", num("mean_recall"));
  if (num("mean_rel_error") >= 0) std::fprintf(stderr, ", mean rel. error %.4f", num("mean_rel_error"));
  std::fprintf(stderr, "\n");
}

std::string format_gpu_memory(const pipeline::GpuMemoryReport& m) {
  const double gib = 1024.0 * 1024.0 * 1024.0;
  std::string s = "GPU memory (peak of vdit's buffers):";
  if (m.text_encoder_peak) s += strfmt(" text encoder %.2f GiB,", m.text_encoder_peak / gib);
  if (m.denoising_peak) s += strfmt(" denoising %.2f GiB,", m.denoising_peak / gib);
  if (m.vae_peak) s += strfmt(" VAE %.2f GiB,", m.vae_peak / gib);
  s.pop_back();
  s += strfmt("; the device had at most %.2f of %.2f GiB in use", m.device_used_max / gib, m.device_total / gib);
  return s;
}

int run_generate(GenerateOptions& o) {
  // Cheap checks first, in the order a user fixes them: output kind, prompt, model, settings, output folder.
  auto target = classify_output(o.output);
  if (!target) return report_error(target.status().message());
  Status s = collect_inputs(o);
  if (!s) return report_error(s.message());
  auto plan = pipeline::plan_generation(o.in);
  if (!plan) return report_error(plan.status().message());
  plan->inputs.recovery_latents_path = pipeline::recovery_latents_path(o.output);
  MediaOptions media;
  media.crf = o.crf;
  s = check_output(o.output, plan->settings.frames, media);
  if (!s) return report_error(s.message());
  auto sink = create_frame_sink(o.output, media);
  if (!sink) return report_error(sink.status().message());

  const pipeline::GenerationSettings& g = plan->settings;
  if (!o.quiet) {
    if (plan->seed_was_random && o.in.noise_path.empty())
      std::fprintf(stderr, "seed: %llu (random)\n", static_cast<unsigned long long>(plan->seed));
    std::fprintf(stderr, "model: %s (%s layout), %d frames %dx%d, %d %s steps, shift %g, guidance %g\n",
                 plan->files.dir.empty() ? plan->files.dit.c_str() : plan->files.dir.c_str(),
                 plan->files.layout.c_str(), g.frames, g.width, g.height, g.steps, g.sampler.c_str(), g.shift,
                 g.guidance);
  }
  ProgressBar bar(!o.quiet);
  ProgressLogScope log_scope(bar);
  cancel_on_interrupt();
  auto report =
      pipeline::run_generation(*plan, sink->get(), [&bar](const pipeline::ProgressEvent& e) { return bar.update(e); });
  bar.finish();
  if (!report) {
    if (report.status().code() == StatusCode::cancelled) return report_error("interrupted; no output was written");
    return report_error(report.status().message());
  }
  if (!o.quiet) {
    std::fprintf(stderr, "wrote %s: %s, %d frame%s of %dx%d at %g fps%s\n", target->path.c_str(),
                 output_kind_name(target->kind), report->frames_written, report->frames_written == 1 ? "" : "s",
                 g.width, g.height, g.fps,
                 o.in.save_latents_path.empty() ? "" : (", latents in " + o.in.save_latents_path).c_str());
    std::fprintf(stderr, "time: %s\n", format_timings(report->timings).c_str());
    if (report->gpu_memory.used) std::fprintf(stderr, "%s\n", format_gpu_memory(report->gpu_memory).c_str());
    if (o.in.attention_quality_stats) print_attention_stats(report->attention_stats, report->attention_name);
  }
  return 0;
}

std::function<int()> setup_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  app.add_option(
         "-o,--output", o->output,
         "output: .mp4/.mkv (H.264), .webm (VP9), .png/.jpg (one frame), or a folder ending in '/' (numbered PNGs)")
      ->required();
  app.add_option("-p,--prompt", o->in.prompt, "the prompt");
  app.add_option("--prompt-file", o->prompt_file, "read the prompt from a UTF-8 text file");
  o->o_negative = app.add_option("--negative-prompt", o->negative_prompt,
                                 "negative prompt (default: the model's, else Wan2.1's official Chinese one)");
  app.add_option("--model", o->in.model.dir,
                 "model folder: official Wan2.1, diffusers or built-in layout (default: the built-in vdit-tiny-t2v)");
  app.add_option("--dit", o->in.model.dit, "DiT weights (file, shard index or folder), overriding the model folder's");
  app.add_option("--text-encoder", o->in.model.text_encoder, "UMT5 text encoder weights (file or folder)");
  app.add_option("--tokenizer", o->in.model.tokenizer, "sentencepiece tokenizer (file or folder)");
  app.add_option("--vae", o->in.model.vae, "VAE weights file");
  o->o_frames = app.add_option("--frames", o->frames, "frames, 4k+1 (1 = a single image; default: model, else 81)");
  o->o_height = app.add_option("--height", o->height, "height, a multiple of 16 (default: model, else 480)");
  o->o_width = app.add_option("--width", o->width, "width, a multiple of 16 (default: model, else 832)");
  o->o_steps = app.add_option("--steps", o->steps, "denoising steps (default: model, else 50)");
  o->o_guidance =
      app.add_option("--guidance", o->guidance, "classifier-free guidance scale; 1 = off (default: model, else 5)");
  o->o_shift = app.add_option("--shift", o->shift, "sigma shift (default: model, else 5)");
  o->o_sampler = app.add_option("--sampler", o->sampler, "unipc, euler or dpm++ (default: model, else unipc)");
  o->o_seed = app.add_option("--seed", o->seed, "noise seed; < 0 or absent = random (printed)");
  app.add_option("--embeds", o->in.embeds_path,
                 "safetensors with `context` and `negative_context`: skips the text encoder");
  app.add_option("--noise", o->in.noise_path, "safetensors with `noise` [16, F', H', W']: replaces the seeded noise");
  app.add_option("--save-latents", o->in.save_latents_path,
                 "write the final latent (safetensors `latents`, settings in metadata)");
  app.add_option("--attention", o->in.attention_method, "self-attention method (dense or a sparse method)");
  app.add_option("--attention-config", o->in.attention_config, "method settings: JSON text or a JSON file");
  app.add_flag(
      "--attention-stats", o->in.attention_quality_stats,
      "measure sparse attention against dense (recall, error; one extra dense pass per call) and print a summary");
  app.add_option("--device", o->in.device, "DiT device: cpu or cuda");
  app.add_option("--text-encoder-device", o->in.text_encoder_device, "text encoder device: cpu or cuda");
  app.add_option("--crf", o->crf, "video quality, lower is better (H.264 0..51, default 10; VP9 0..63, default 15)");
  o->o_fps = app.add_option("--fps", o->fps, "video frame rate (default: model, else 16)");
  app.add_flag("-q,--quiet", o->quiet, "no progress line and no summary");
  return [o] { return run_generate(*o); };
}

}  // namespace

VDIT_REGISTER_COMMAND("generate", "Generate a video or image from a prompt", 10, setup_generate);

}  // namespace vdit::cli
