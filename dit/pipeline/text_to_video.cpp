// plan_generation (header-only checks) and run_generation (text encoder -> noise -> denoising loop ->
// latents -> VAE -> sink). Parts are loaded one after another and released when done, so peak memory
// is the largest part, not their sum.
#include "dit/pipeline/text_to_video.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#include "attention/methods/method.h"
#include "dit/core/log.h"
#include "dit/core/rng.h"
#include "dit/model/wan_dit.h"
#include "dit/model/wan_files.h"
#include "dit/pipeline/latent_files.h"
#include "dit/pipeline/sampling_loop.h"
#include "dit/pipeline/vae_to_sink.h"
#include "dit/core/device_buffer.h"
#include "dit/text/t5_encoder.h"
#include "dit/text/t5_encoder_cuda.h"
#include "dit/text/tokenizer.h"
#include "dit/vae/vae_weights.h"
#include "io/tensor_file.h"
#include "schedulers/scheduler.h"

namespace vdit::pipeline {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

Result<nlohmann::json> parse_attention_config(const std::string& text) {
  if (text.empty()) return nlohmann::json();
  size_t first = text.find_first_not_of(" \t\r\n");
  std::string json_text = text;
  std::string what = "--attention-config";
  if (first == std::string::npos || text[first] != '{') {
    std::ifstream f(text);
    if (!f)
      return not_found("--attention-config \"" + text +
                       "\" is neither JSON text (starting with '{') nor a readable file");
    std::stringstream ss;
    ss << f.rdbuf();
    json_text = ss.str();
    what = text;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    return invalid_argument(what + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) return invalid_argument(what + ": must be a JSON object of method settings");
  return j;
}

attn::ModelInfo attention_model_info(const model::WanDitConfig& c, const GenerationSettings& s) {
  attn::ModelInfo info;
  info.num_layers = static_cast<int>(c.num_layers);
  info.num_heads = static_cast<int>(c.num_heads);
  info.head_dim = static_cast<int>(c.head_dim());
  info.family = "wan";
  info.grid = {s.latent_frames() / c.patch_size[0], s.latent_height() / c.patch_size[1],
               s.latent_width() / c.patch_size[2]};
  info.num_steps = s.steps;
  return info;
}

// Checks one embedding tensor's header: [Lc, text_dim] (or [1, Lc, text_dim]), 0 < Lc <= text_len.
Status check_embedding(const TensorFile& file, const char* name, const model::WanDitConfig& c,
                       const std::string& path) {
  const TensorEntry* e = file.find(name);
  if (!e) return not_found(strfmt("%s: no tensor \"%s\"", path.c_str(), name));
  Shape s = e->shape;
  if (s.size() == 3 && s[0] == 1) s.erase(s.begin());
  if (s.size() != 2 || s[1] != c.text_dim || s[0] < 1 || s[0] > c.text_len) {
    return invalid_argument(strfmt("%s: \"%s\" is %s; this DiT takes [Lc, %lld] with 1 <= Lc <= %lld", path.c_str(),
                                   name, shape_str(e->shape).c_str(), static_cast<long long>(c.text_dim),
                                   static_cast<long long>(c.text_len)));
  }
  return Status::ok();
}

Status check_parent_folder(const std::string& path, const char* option) {
  std::string parent = fs::path(path).parent_path().string();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) {
    return not_found(strfmt("%s \"%s\": folder \"%s\" does not exist", option, path.c_str(), parent.c_str()));
  }
  return Status::ok();
}

// Opens what is cheap to open (weight file headers, the sentencepiece model), so a wrong file fails now
// rather than after denoising.
Status check_part_headers(const ModelFiles& files, bool text) {
  {
    VDIT_ASSIGN(auto vae_file, open_tensor_file(files.vae));
    auto layout = vae::detect_vae_layout(*vae_file);
    if (!layout) return layout.status().with_context("VAE " + files.vae);
  }
  if (text) {
    auto tokenizer = text::Tokenizer::load(files.tokenizer);
    if (!tokenizer) return tokenizer.status().with_context("tokenizer " + files.tokenizer);
    std::error_code ec;
    if (!fs::is_directory(files.text_encoder, ec)) {
      auto t5 = open_tensor_file(files.text_encoder);
      if (!t5) return t5.status().with_context("text encoder " + files.text_encoder);
    }
  }
  return Status::ok();
}

uint64_t random_seed() {
  std::random_device rd;
  uint64_t s = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return s & 0x7fffffffffffffffull;  // Wan draws from [0, sys.maxsize]
}

// The DiT as a VelocityModel: picks the branch's text conditioning and passes the loop position on.
class DitVelocity final : public VelocityModel {
 public:
  DitVelocity(const model::WanDit& dit, const model::TextConditioning* cond, const model::TextConditioning* uncond,
              attn::SelfAttention& attention, int num_steps)
      : dit_(dit), cond_(cond), uncond_(uncond), attention_(attention), num_steps_(num_steps) {}
  Status predict(Tensor* v, int step, int64_t timestep, const Tensor& x, int branch) override {
    const model::TextConditioning* text = branch == kBranchCond ? cond_ : uncond_;
    if (!text) return internal_error("no text conditioning for the unconditional branch");
    return dit_.forward(v, x, timestep, *text, attention_, {step, num_steps_, branch});
  }

 private:
  const model::WanDit& dit_;
  const model::TextConditioning* cond_;
  const model::TextConditioning* uncond_;
  attn::SelfAttention& attention_;
  int num_steps_;
};

// What to try when a stage runs out of GPU memory (other errors pass through unchanged).
Status with_memory_hint(Status st, Stage stage) {
  if (st.code() != StatusCode::out_of_memory) return st;
  const char* hint = "";
  switch (stage) {
    case Stage::text_encoder:
      hint = "encode the prompt on the CPU instead (--text-encoder-device cpu; it is freed before the DiT loads "
             "either way)";
      break;
    case Stage::loading:
    case Stage::denoising:
      hint = "try a smaller size (--height/--width/--frames), free the GPU of other processes, or run the DiT "
             "on the CPU (--device cpu)";
      break;
    case Stage::vae_decode:
      hint = "decode on the CPU (vdit decode, from the saved latents)";
      break;
    case Stage::finishing:
      return st;
  }
  return Status(st.code(), st.message() + "; " + hint);
}

// Peak of vdit's GPU buffers since the last reset, and the device's use now, into `peak`/`report`.
void note_gpu_memory(size_t* peak, GpuMemoryReport* report) {
  const DeviceMemoryUse u = device_memory_use();
  *peak = std::max(*peak, u.peak);
  report->device_used_max = std::max(report->device_used_max, u.device_used);
  report->device_total = u.device_total;
}

struct Contexts {
  Tensor cond;    // [Lc, text_dim]
  Tensor uncond;  // [Ln, text_dim]; undefined in single-pass runs
};

Result<Contexts> encode_prompts(const GenerationPlan& plan, bool need_negative, StageTimings* t,
                                GpuMemoryReport* mem) {
  Contexts out;
  if (!plan.inputs.embeds_path.empty()) {
    auto t0 = Clock::now();
    VDIT_ASSIGN(TextEmbeddings e, read_text_embeddings(plan.inputs.embeds_path));
    t->load_s += seconds_since(t0);
    out.cond = e.context;
    if (need_negative) out.uncond = e.negative_context;
    return out;
  }
  auto t0 = Clock::now();
  VDIT_ASSIGN(text::Tokenizer tokenizer, text::Tokenizer::load(plan.files.tokenizer));
  // One of the two encoders: the CPU one, or the GPU one (bf16, freed when this function returns so its
  // memory is back before the DiT loads).
  std::optional<text::T5Encoder> t5_cpu;
  std::unique_ptr<text::T5EncoderCuda> t5_gpu;
  if (plan.inputs.text_encoder_device == "cuda") {
    VDIT_ASSIGN(t5_gpu, text::T5EncoderCuda::load(plan.files.text_encoder, text::T5CudaOptions{}));
  } else {
    text::T5LoadOptions t5_options;
    t5_options.weights_f32 = false;  // keep bf16 weights mapped; only two prompts are encoded
    VDIT_ASSIGN(t5_cpu, text::T5Encoder::load(plan.files.text_encoder, t5_options));
  }
  t->load_s += seconds_since(t0);
  t0 = Clock::now();
  text::TokenizerOptions tok;
  tok.max_length = plan.dit_config.text_len;
  auto encode = [&](const std::string& prompt, const char* what) -> Result<Tensor> {
    VDIT_ASSIGN(text::TokenizedPrompt p, tokenizer.encode(prompt, tok));
    if (p.truncated) {
      VDIT_LOG_WARN("the %s has %lld tokens; only the first %lld are used", what, static_cast<long long>(p.piece_count),
                    static_cast<long long>(tok.max_length - 1));
    }
    Result<Tensor> r = t5_gpu ? t5_gpu->encode_trimmed(p.ids, p.mask)    // [Lc, text_dim]
                              : t5_cpu->encode_trimmed(p.ids, p.mask);
    if (!r) return r.status().with_context(strfmt("encoding the %s", what));
    return r;
  };
  VDIT_ASSIGN(out.cond, encode(plan.inputs.prompt, "prompt"));
  if (need_negative) {
    VDIT_ASSIGN(out.uncond, encode(plan.settings.negative_prompt, "negative prompt"));
  }
  t->text_encoder_s += seconds_since(t0);
  if (t5_gpu) note_gpu_memory(&mem->text_encoder_peak, mem);
  return out;
}

}  // namespace

Result<GenerationPlan> plan_generation(const GenerationInputs& in) {
  GenerationPlan plan;
  plan.inputs = in;
  const bool have_embeds = !in.embeds_path.empty();
  if (have_embeds && (!in.prompt.empty() || in.settings.negative_prompt)) {
    return invalid_argument(
        "--embeds replaces the text encoder, so --prompt/--prompt-file/--negative-prompt cannot be used with it");
  }
  if (!have_embeds && in.prompt.empty())
    return invalid_argument("no prompt: give --prompt TEXT, --prompt-file FILE or --embeds FILE");
  if (in.device != "cpu" && in.device != "cuda")
    return invalid_argument("--device \"" + in.device + "\": use cpu or cuda");
  if (in.text_encoder_device != "cpu" && in.text_encoder_device != "cuda") {
    return invalid_argument("--text-encoder-device \"" + in.text_encoder_device + "\": use cpu or cuda");
  }
  // VDIT_BUILT_WITH_CUDA comes from the build's feature definitions (tools/cmake/sources.cmake).
  if (in.device == "cuda" && !VDIT_BUILT_WITH_CUDA) {
    return unsupported(
        "--device cuda: this vdit was built without CUDA (configure with -DVDIT_CUDA=ON on a machine "
        "with nvcc); use --device cpu");
  }
  if (in.text_encoder_device == "cuda" && !VDIT_BUILT_WITH_CUDA) {
    return unsupported("--text-encoder-device cuda: this vdit was built without CUDA; use --text-encoder-device cpu");
  }
  if ((in.device == "cuda" || in.text_encoder_device == "cuda") && cuda_device_count() == 0) {
    return unsupported(std::string(in.device == "cuda" ? "--device" : "--text-encoder-device") +
                       " cuda: no CUDA device is visible to this process; use cpu");
  }

  VDIT_ASSIGN(plan.files, locate_model_files(in.model, {true, !have_embeds, true}));
  VDIT_TRY(check_part_headers(plan.files, !have_embeds));

  // The DiT header: defaults from its metadata, and the config the shapes of other inputs must match.
  VDIT_ASSIGN(model::WanDitFiles dit_files, model::locate_wan_dit_files(plan.files.dit));
  VDIT_ASSIGN(auto dit_file, model::open_wan_dit_files(dit_files));
  model::TensorShapes shapes;
  for (const auto& e : dit_file->entries()) shapes[e.name] = e.shape;
  model::WanDitConfigSources sources;
  sources.weights_name = dit_files.display_name();
  sources.config_json_path = dit_files.config_json;
  sources.metadata = &dit_file->metadata();
  VDIT_ASSIGN(plan.dit_config, model::resolve_wan_dit_config(shapes, sources));
  VDIT_ASSIGN(ModelDefaults defaults, model_defaults_from_metadata(dit_file->metadata(), dit_files.display_name()));
  const model::WanDitConfig& c = plan.dit_config;

  SettingsRequest request = in.settings;
  Shape noise_shape;
  if (!in.noise_path.empty()) {
    VDIT_ASSIGN(noise_shape, peek_latent_shape(in.noise_path, "noise"));
    // The noise fixes the size; values the user did not give are taken from it.
    if (!request.frames) request.frames = static_cast<int>(4 * (noise_shape[1] - 1) + 1);
    if (!request.height) request.height = static_cast<int>(8 * noise_shape[2]);
    if (!request.width) request.width = static_cast<int>(8 * noise_shape[3]);
  }
  plan.settings = resolve_settings(request, defaults);
  Status valid = validate_settings(plan.settings);
  if (!valid) return valid;
  const GenerationSettings& s = plan.settings;
  const Shape latent = {c.in_dim, s.latent_frames(), s.latent_height(), s.latent_width()};
  if (!noise_shape.empty() && noise_shape != latent) {
    return invalid_argument(strfmt("--noise %s holds noise %s, but %d frames at %dx%d need %s", in.noise_path.c_str(),
                                   shape_str(noise_shape).c_str(), s.frames, s.width, s.height,
                                   shape_str(latent).c_str()));
  }
  for (int axis = 0; axis < 3; ++axis) {
    const int64_t n = latent[static_cast<size_t>(axis + 1)], p = c.patch_size[static_cast<size_t>(axis)];
    if (n % p != 0 || n / p > 1024) {
      return invalid_argument(
          strfmt("the latent %s does not fit this DiT's patch size (%lld, %lld, %lld), at most 1024 "
                 "patches per axis; choose another size",
                 shape_str(latent).c_str(), static_cast<long long>(c.patch_size[0]),
                 static_cast<long long>(c.patch_size[1]), static_cast<long long>(c.patch_size[2])));
    }
  }
  const bool need_negative = s.guidance != 1.0;
  if (have_embeds) {
    VDIT_ASSIGN(auto embeds, open_tensor_file(in.embeds_path));
    VDIT_TRY(check_embedding(*embeds, "context", c, in.embeds_path));
    if (need_negative && !embeds->find("negative_context")) {
      return invalid_argument(in.embeds_path + ": no \"negative_context\" tensor, which guidance " +
                              strfmt("%g", s.guidance) +
                              " needs; add it or use --guidance 1 (no classifier-free guidance)");
    }
    if (need_negative) VDIT_TRY(check_embedding(*embeds, "negative_context", c, in.embeds_path));
  }

  VDIT_ASSIGN(plan.attention_config, parse_attention_config(in.attention_config));
  {
    auto method = attn::make_attention(in.attention_method, plan.attention_config, attention_model_info(c, s));
    if (!method) return method.status().with_context("--attention " + in.attention_method);
  }
  if (!in.save_latents_path.empty()) VDIT_TRY(check_parent_folder(in.save_latents_path, "--save-latents"));

  if (in.seed && *in.seed >= 0) {
    plan.seed = static_cast<uint64_t>(*in.seed);
  } else {
    plan.seed = random_seed();
    plan.seed_was_random = true;
  }
  return plan;
}

std::map<std::string, std::string> generation_metadata(const GenerationPlan& plan) {
  std::map<std::string, std::string> m = settings_metadata(plan.settings);
  if (!plan.inputs.embeds_path.empty()) {
    m.erase("negative_prompt");
    m["embeds"] = plan.inputs.embeds_path;
  } else {
    m["prompt"] = plan.inputs.prompt;
  }
  m["seed"] = std::to_string(plan.seed);
  m["noise"] = plan.inputs.noise_path.empty() ? "philox4x32-10 box-muller (dit/core/rng.h)" : plan.inputs.noise_path;
  m["attention"] = plan.inputs.attention_method;
  if (!plan.attention_config.is_null()) m["attention_config"] = plan.attention_config.dump();
  m["model"] = plan.files.dir.empty() ? plan.files.dit : plan.files.dir;
  m["producer"] = "vdit";
  return m;
}

Result<GenerationReport> run_generation(const GenerationPlan& plan, FrameSink* sink, const ProgressHandler& progress) {
  if (!sink && !plan.inputs.skip_decode) return invalid_argument("run_generation needs a frame sink");
  const auto start = Clock::now();
  GenerationReport report;
  report.seed = plan.seed;
  StageTimings& t = report.timings;
  const GenerationSettings& s = plan.settings;
  const model::WanDitConfig& c = plan.dit_config;
  const bool need_negative = s.guidance != 1.0;
  auto cancelled = [&](const char* where) { return Status(StatusCode::cancelled, strfmt("cancelled %s", where)); };
  auto stage = [&](Stage st) { return !progress || progress({st, 0, 0, 0}); };
  // Any failure from here on drops the sink's partial output (the sink's destructor would too).
  auto fail = [&](Status st) -> Result<GenerationReport> {
    if (sink) sink->abort();
    return st;
  };

  GpuMemoryReport& mem = report.gpu_memory;
  mem.used = plan.inputs.device == "cuda" || plan.inputs.text_encoder_device == "cuda";
  if (mem.used) reset_device_memory_peak();
  if (!stage(plan.inputs.embeds_path.empty() ? Stage::text_encoder : Stage::loading))
    return fail(cancelled("before text encoding"));
  auto contexts = encode_prompts(plan, need_negative, &t, &mem);
  if (!contexts) return fail(with_memory_hint(contexts.status(), Stage::text_encoder));
  if (mem.used) reset_device_memory_peak();

  if (!stage(Stage::loading)) return fail(cancelled("before loading the DiT"));
  auto t0 = Clock::now();
  model::WanDitLoadOptions dit_options;
  dit_options.device = plan.inputs.device == "cuda" ? model::DitDevice::cuda : model::DitDevice::cpu;
  auto dit = model::load_wan_dit(plan.files.dit, dit_options);
  if (!dit) return fail(with_memory_hint(dit.status(), Stage::loading));
  t.load_s += seconds_since(t0);

  // Initial latent x [C, F', H', W'] at sigma_0.
  const Shape latent = {c.in_dim, s.latent_frames(), s.latent_height(), s.latent_width()};
  Tensor x;
  if (!plan.inputs.noise_path.empty()) {
    auto noise = read_latent_tensor(plan.inputs.noise_path, "noise");
    if (!noise) return fail(noise.status());
    x = noise->value;
  } else {
    auto noise = gaussian_noise(plan.seed, latent);
    if (!noise) return fail(noise.status());
    x = *noise;
  }
  report.latent_shape = x.shape();

  auto method = attn::make_attention(plan.inputs.attention_method, plan.attention_config, attention_model_info(c, s));
  if (!method) return fail(method.status());
  attn::StatsCollector stats;
  (*method)->set_stats_sink(stats.sink());  // always on: the attention share comes from its timings
  (*method)->set_quality_stats(plan.inputs.attention_quality_stats);
  report.attention_name = (*method)->name();
  auto scheduler = make_scheduler(s.sampler);
  if (!scheduler) return fail(scheduler.status());
  Status st = (*scheduler)->set_timesteps(s.steps, s.shift);
  if (!st) return fail(st);

  if (!stage(Stage::denoising)) return fail(cancelled("before denoising"));
  t0 = Clock::now();
  auto cond = (*dit)->prepare_text(contexts->cond);
  if (!cond) return fail(with_memory_hint(cond.status().with_context("prompt context"), Stage::denoising));
  std::shared_ptr<const model::TextConditioning> uncond;
  if (need_negative) {
    auto u = (*dit)->prepare_text(contexts->uncond);
    if (!u) return fail(with_memory_hint(u.status().with_context("negative prompt context"), Stage::denoising));
    uncond = *u;
  }
  attn::SelfAttention* attention = plan.inputs.attention_override ? plan.inputs.attention_override : method->get();
  DitVelocity velocity(**dit, cond->get(), uncond.get(), *attention, s.steps);
  SamplingOptions options;
  options.guidance_scale = static_cast<float>(s.guidance);
  options.has_negative = need_negative;
  options.progress = [&](int done, int total, double) {
    return !progress || progress({Stage::denoising, done, total, seconds_since(t0)});
  };
  st = run_sampling_loop(&x, &velocity, scheduler->get(), options);
  t.denoising_s += seconds_since(t0);
  double density_sum = 0;
  for (const auto& r : stats.records()) {
    t.attention_s += r.seconds;
    ++t.attention_calls;
    density_sum += r.dense ? 1.0 : r.density;
    report.attention_dense_calls += r.dense ? 1 : 0;
  }
  if (t.attention_calls > 0) report.attention_density = density_sum / static_cast<double>(t.attention_calls);
  if (plan.inputs.attention_quality_stats) report.attention_stats = stats.to_json();
  if (mem.used) note_gpu_memory(&mem.denoising_peak, &mem);
  if (!st) return fail(with_memory_hint(st, Stage::denoising));
  // Release the DiT (and the conditioning it made) before the VAE is loaded.
  uncond.reset();
  cond->reset();
  dit->reset();

  if (!plan.inputs.save_latents_path.empty()) {
    st = save_latents(plan.inputs.save_latents_path, x, generation_metadata(plan));
    if (!st) return fail(st.with_context("--save-latents"));
  }

  if (plan.inputs.skip_decode) {
    t.total_s = seconds_since(start);
    return report;
  }
  // From here on a failure would lose the denoising work: keep the latents for `vdit decode` first.
  auto fail_decode = [&](Status failed) -> Result<GenerationReport> {
    failed = with_memory_hint(std::move(failed), Stage::vae_decode);
    if (failed.code() == StatusCode::cancelled) return fail(failed);
    std::string kept = plan.inputs.save_latents_path;
    if (kept.empty() && !plan.inputs.recovery_latents_path.empty()) {
      Status saved = save_latents(plan.inputs.recovery_latents_path, x, generation_metadata(plan));
      if (saved) kept = plan.inputs.recovery_latents_path;
    }
    if (!kept.empty()) {
      failed = Status(failed.code(), failed.message() + strfmt("; the sampled latents are in %s: redo the decode with "
                                                               "`vdit decode --latents %s -o OUTPUT`",
                                                               kept.c_str(), kept.c_str()));
    }
    return fail(failed);
  };
  if (!stage(Stage::loading)) return fail_decode(cancelled("before loading the VAE"));
  t0 = Clock::now();
  auto vae = vae::VaeDecoder::load(plan.files.vae);
  if (!vae) return fail_decode(vae.status());
  // With --device cuda the VAE decodes on the GPU too (TF32 convolutions, as PyTorch's default); where that
  // is impossible (no cuDNN, not enough GPU memory) the CPU decoder takes over with a warning.
  std::unique_ptr<vae::VaeDecoderCuda> vae_gpu;
  if (plan.inputs.device == "cuda") {
    if (mem.used) reset_device_memory_peak();
    vae::VaeCudaOptions vae_options;
    vae_options.precision = vae::VaeCudaPrecision::tf32;
    auto made = vae::VaeDecoderCuda::create(*vae, vae_options);
    if (made) {
      vae_gpu = std::move(made.value());
    } else if (made.status().code() == StatusCode::unsupported ||
               made.status().code() == StatusCode::out_of_memory) {
      VDIT_LOG_WARN("VAE decode on the CPU instead: %s", made.status().message().c_str());
    } else {
      return fail_decode(made.status().with_context("VAE on the GPU"));
    }
  }
  t.load_s += seconds_since(t0);
  st = decode_into_sink(*vae, x, s.fps, sink, progress, &t, vae_gpu.get());
  if (mem.used && vae_gpu) note_gpu_memory(&mem.vae_peak, &mem);
  if (!st) return fail_decode(st);
  report.frames_written = sink->frames_written();
  t.total_s = seconds_since(start);
  return report;
}

}  // namespace vdit::pipeline
