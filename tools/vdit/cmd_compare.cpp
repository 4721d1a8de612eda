// `vdit compare`: the speed/quality comparison of sparse attention against dense on one prompt and seed.
// Runs the whole pipeline once with dense attention (the reference) and once per method, with the same
// settings and noise, keeps each video in memory, and reports per method: denoising time and its speed-up
// against dense, self-attention time and share, mean attention density, and the video's PSNR / SSIM /
// largest difference against the dense video (io/video_fidelity.h). An untimed dense run goes first
// (--warmup), so the first timed run does not pay the process's start-up costs. Optionally writes every video
// (-o DIR: DIR/<method>.mp4) and the table as JSON. Every method and the model are checked before anything runs.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dit/pipeline/text_to_video.h"
#include "io/frame_sink.h"
#include "io/memory_sink.h"
#include "io/video_fidelity.h"
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

struct CompareOptions {
  pipeline::GenerationInputs in;
  std::vector<std::string> methods = {"radial", "vmoba", "draft", "rettention"};
  int frames = 0, height = 0, width = 0, steps = 0;
  int64_t seed = 1;
  int warmup = 1;  // untimed dense runs first (the first run of a process pays page faults and thread start-up)
  std::string out_dir, json_path;
  bool quiet = false;
  CLI::Option *o_frames = nullptr, *o_height = nullptr, *o_width = nullptr, *o_steps = nullptr;
};

struct MethodRun {
  std::string method;
  pipeline::GenerationReport report;
  MemoryFrameSink video;
};

std::string json_number(double v) { return std::isfinite(v) ? strfmt("%.4f", v) : "inf"; }

// One planned run into memory; with `out_dir`, the video is also written as out_dir/<method>.mp4.
Result<MethodRun> run_method(const pipeline::GenerationPlan& plan, const std::string& out_dir) {
  MethodRun run;
  run.method = plan.inputs.attention_method;
  auto report = pipeline::run_generation(plan, &run.video, {});
  if (!report) return report.status().with_context("--attention " + run.method);
  run.report = *report;
  if (!out_dir.empty()) {
    const std::string path = (std::filesystem::path(out_dir) / (run.method + ".mp4")).string();
    VDIT_ASSIGN(std::unique_ptr<FrameSink> sink, create_frame_sink(path, {}));
    VDIT_TRY(run.video.write_to(sink.get()).with_context(path));
  }
  return run;
}

int run_compare(CompareOptions& o) {
  pipeline::SettingsRequest& r = o.in.settings;
  if (o.o_frames->count()) r.frames = o.frames;
  if (o.o_height->count()) r.height = o.height;
  if (o.o_width->count()) r.width = o.width;
  if (o.o_steps->count()) r.steps = o.steps;
  o.in.seed = o.seed;
  if (o.in.prompt.empty()) return report_error("no prompt: give --prompt");
  if (o.methods.empty()) return report_error("--methods is empty: name at least one sparse method");
  // Every plan first (dense, then the methods): a typo in the last method fails before the first run.
  std::vector<pipeline::GenerationPlan> plans;
  std::vector<std::string> all = {"dense"};
  all.insert(all.end(), o.methods.begin(), o.methods.end());
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0 && all[i] == "dense") {
      return report_error("--methods: dense is the reference and always runs; list sparse methods");
    }
    pipeline::GenerationInputs in = o.in;
    in.attention_method = all[i];
    auto plan = pipeline::plan_generation(in);
    if (!plan) return report_error(plan.status().message());
    plans.push_back(std::move(*plan));
  }
  if (!o.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.out_dir, ec);
    if (ec) return report_error("-o " + o.out_dir + ": cannot create the folder (" + ec.message() + ")");
    const Status s = check_output((std::filesystem::path(o.out_dir) / "dense.mp4").string(),
                                  plans.front().settings.frames, {});
    if (!s) return report_error(s.message());
  }

  for (int i = 0; i < o.warmup; ++i) {
    if (!o.quiet) std::fprintf(stderr, "warm-up run (dense, not timed) ...\n");
    auto run = run_method(plans.front(), "");
    if (!run) return report_error(run.status().message());
  }
  std::vector<MethodRun> runs;
  for (const pipeline::GenerationPlan& plan : plans) {
    if (!o.quiet) std::fprintf(stderr, "running --attention %s ...\n", plan.inputs.attention_method.c_str());
    auto run = run_method(plan, o.out_dir);
    if (!run) return report_error(run.status().message());
    runs.push_back(std::move(*run));
  }

  const MethodRun& ref = runs.front();
  const double dense_s = ref.report.timings.denoising_s;
  nlohmann::json j;
  j["prompt"] = o.in.prompt, j["seed"] = o.seed, j["device"] = o.in.device;
  j["width"] = ref.video.width(), j["height"] = ref.video.height(), j["frames"] = ref.video.frames_written();
  std::printf("vdit compare: \"%s\", seed %lld, %d frames of %dx%d, device %s\n", o.in.prompt.c_str(),
              static_cast<long long>(o.seed), ref.video.frames_written(), ref.video.width(), ref.video.height(),
              o.in.device.c_str());
  std::printf("%-11s %11s %8s %13s %8s %9s %9s %7s %8s\n", "method", "denoise s", "speed-up", "attention s",
              "share", "density", "PSNR dB", "SSIM", "max diff");
  for (const MethodRun& run : runs) {
    const pipeline::StageTimings& t = run.report.timings;
    auto fid = compare_videos(run.video.bytes(), ref.video.bytes(), ref.video.width(), ref.video.height(),
                              ref.video.frames_written());
    if (!fid) return report_error(fid.status().with_context(run.method).message());
    const double speedup = t.denoising_s > 0 ? dense_s / t.denoising_s : 0;
    std::printf("%-11s %11.2f %7.2fx %13.2f %7.1f%% %9.3f %9s %7.4f %8d\n", run.method.c_str(), t.denoising_s, speedup,
                t.attention_s, 100 * t.attention_share(), run.report.attention_density,
                std::isfinite(fid->psnr_db) ? strfmt("%.2f", fid->psnr_db).c_str() : "inf", fid->ssim,
                fid->max_abs_diff);
    nlohmann::json m;
    m["method"] = run.method;
    m["denoising_s"] = t.denoising_s, m["speedup"] = speedup;
    m["attention_s"] = t.attention_s, m["attention_share"] = t.attention_share();
    m["attention_calls"] = t.attention_calls, m["attention_dense_calls"] = run.report.attention_dense_calls;
    m["density"] = run.report.attention_density;
    m["psnr_db"] = json_number(fid->psnr_db), m["ssim"] = fid->ssim, m["max_abs_diff"] = fid->max_abs_diff;
    j["methods"].push_back(m);
  }
  std::printf("PSNR/SSIM against the dense video of the same seed; SSIM on luma, 11x11 Gaussian window; density = "
              "mean over self-attention calls (1 for calls run dense)\n");
  if (!o.json_path.empty()) {
    std::ofstream f(o.json_path);
    f << j.dump(2) << "\n";
    if (!f) return report_error("--json " + o.json_path + ": write failed");
  }
  return 0;
}

std::function<int()> setup_compare(CLI::App& app) {
  auto o = std::make_shared<CompareOptions>();
  app.add_option("-p,--prompt", o->in.prompt, "the prompt")->required();
  app.add_option("--model", o->in.model.dir, "model folder (default: the built-in vdit-tiny-t2v)");
  app.add_option("--methods", o->methods, "sparse methods to compare with dense (default radial,vmoba,draft,rettention)")
      ->delimiter(',');
  o->o_frames = app.add_option("--frames", o->frames, "frames, 4k+1 (default: the model's)");
  o->o_height = app.add_option("--height", o->height, "height, a multiple of 16 (default: the model's)");
  o->o_width = app.add_option("--width", o->width, "width, a multiple of 16 (default: the model's)");
  o->o_steps = app.add_option("--steps", o->steps, "denoising steps (default: the model's)");
  app.add_option("--seed", o->seed, "noise seed shared by every run (default 1)");
  app.add_option("--warmup", o->warmup, "untimed dense runs before the timed ones (default 1)")->check(CLI::Range(0, 10));
  app.add_option("--device", o->in.device, "DiT device: cpu or cuda");
  app.add_option("--text-encoder-device", o->in.text_encoder_device, "text encoder device: cpu or cuda");
  app.add_option("-o,--output-dir", o->out_dir, "also write every video as DIR/<method>.mp4");
  app.add_option("--json", o->json_path, "also write the table as JSON");
  app.add_flag("-q,--quiet", o->quiet, "no progress lines");
  return [o] { return run_compare(*o); };
}

}  // namespace

VDIT_REGISTER_COMMAND("compare", "Speed and fidelity of sparse attention methods against dense (same prompt and seed)",
                      13, setup_compare);

}  // namespace vdit::cli
