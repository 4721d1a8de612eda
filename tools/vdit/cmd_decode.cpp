// `vdit decode --latents FILE -o OUT`: redo the VAE decode and media encoding of a generation from the
// latents `vdit generate --save-latents` wrote (e.g. to try another output format or CRF without
// denoising again). Checks come first; the work is dit/pipeline/decode_latents.h.
#include <cstdio>

#include "dit/pipeline/decode_latents.h"
#include "io/frame_sink.h"
#include "tools/vdit/command.h"
#include "tools/vdit/progress_bar.h"

namespace vdit::cli {
namespace {

struct DecodeOptions {
  pipeline::DecodeInputs in;
  std::string output;
  int crf = -1;
  double fps = 0;
  bool quiet = false;
  CLI::Option* o_fps = nullptr;
};

int run_decode(DecodeOptions& o) {
  auto target = classify_output(o.output);
  if (!target) return report_error(target.status().message());
  if (o.o_fps->count()) o.in.fps = o.fps;
  auto plan = pipeline::plan_decode(o.in);
  if (!plan) return report_error(plan.status().message());
  MediaOptions media;
  media.crf = o.crf;
  Status s = check_output(o.output, plan->frames, media);
  if (!s) return report_error(s.message());
  auto sink = create_frame_sink(o.output, media);
  if (!sink) return report_error(sink.status().message());

  ProgressBar bar(!o.quiet);
  ProgressLogScope log_scope(bar);
  cancel_on_interrupt();
  auto timings =
      pipeline::run_decode(*plan, sink->get(), [&bar](const pipeline::ProgressEvent& e) { return bar.update(e); });
  bar.finish();
  if (!timings) {
    if (timings.status().code() == StatusCode::cancelled) return report_error("interrupted; no output was written");
    return report_error(timings.status().message());
  }
  if (!o.quiet) {
    std::fprintf(stderr, "wrote %s: %s, %d frame%s of %dx%d at %g fps\n", target->path.c_str(),
                 output_kind_name(target->kind), (*sink)->frames_written(), (*sink)->frames_written() == 1 ? "" : "s",
                 plan->width, plan->height, plan->fps);
    std::fprintf(stderr, "time: %s\n", format_timings(*timings).c_str());
  }
  return 0;
}

std::function<int()> setup_decode(CLI::App& app) {
  auto o = std::make_shared<DecodeOptions>();
  app.add_option("--latents", o->in.latents_path,
                 "safetensors with `latents` [16, F', H', W'] (vdit generate --save-latents)")
      ->required();
  app.add_option(
         "-o,--output", o->output,
         "output: .mp4/.mkv (H.264), .webm (VP9), .png/.jpg (one frame), or a folder ending in '/' (numbered PNGs)")
      ->required();
  app.add_option("--model", o->in.model.dir, "model folder whose VAE is used (default: the built-in vdit-tiny-t2v)");
  app.add_option("--vae", o->in.model.vae, "VAE weights file, overriding the model folder's");
  app.add_option("--crf", o->crf, "video quality, lower is better (H.264 0..51, default 10; VP9 0..63, default 15)");
  o->o_fps = app.add_option("--fps", o->fps, "frame rate (default: the latents' metadata, else 16)");
  app.add_flag("-q,--quiet", o->quiet, "no progress line and no summary");
  return [o] { return run_decode(*o); };
}

}  // namespace

VDIT_REGISTER_COMMAND("decode", "Decode saved latents into a video or images (the VAE stage of generate)", 11,
                      setup_decode);

}  // namespace vdit::cli
