// `vdit bench vae --size 480p|720p --frames 81`: times the CUDA VAE decoder's streaming decode at the real
// Wan2.1 VAE config (dim 96, z 16) with seeded random weights (the golden recipe: convs N(0, 1/fan_in),
// biases 0.05·N, gammas 1 + 0.1·N). First decodes a small latent on the CPU and on the GPU and checks they
// agree (fp32 within 1e-4, tf32 2e-2, bf16 6e-2); then per precision: one warm-up decode (plans the cuDNN
// algorithms; its frames give the PSNR against the first precision's full-size video), `--iters` timed
// decodes (wall clock around the blocking decode, which ends with a stream synchronization), and the device
// memory. Does not: load real weights or write video.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "dit/core/parallel.h"
#include "dit/core/rng.h"
#include "dit/vae/vae_decoder_cuda.h"
#include "dit/vae/vae_layout.h"
#include "io/tensor_file.h"
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

constexpr double kFp32Tol = 1e-4;  // exact fp32: summation order only
constexpr double kTf32Tol = 2e-2;  // TF32 convolutions (see tests/cuda_vae)
constexpr double kBf16Tol = 6e-2;  // bf16 activations and weights (see tests/cuda_vae)

struct BenchVaeOptions {
  std::string size = "480p";
  int64_t frames = 81;
  std::string precision = "fp32,tf32,bf16";
  int iters = 2;
  int warmup = 1;
  uint64_t seed = 1;
  bool validate = true;
  bool per_tap = false;
  std::string json;
};

// An in-memory TensorFile of generated tensors (owned here).
class GeneratedTensorFile : public TensorFile {
 public:
  GeneratedTensorFile() { path_ = "random Wan2.1 VAE", format_ = "memory"; }
  void add(const std::string& name, Tensor t) {
    TensorEntry e;
    e.name = name, e.dtype = t.dtype(), e.shape = t.shape();
    e.data = static_cast<const uint8_t*>(t.raw()), e.nbytes = t.nbytes(), e.source = path_;
    keep_alive_.push_back(std::make_shared<Tensor>(std::move(t)));
    add_entry(std::move(e));
  }
  void set_metadata(const std::string& k, const std::string& v) { metadata_[k] = v; }
};

Result<Tensor> gaussian(const Shape& shape, uint64_t seed, float scale, float offset) {
  VDIT_ASSIGN(Tensor t, Tensor::create(DType::f32, shape));
  const int64_t n = t.numel(), chunk = int64_t{1} << 16, chunks = (n + chunk - 1) / chunk;
  float* d = t.f32();
  parallel_for(chunks, [&](int64_t c) {
    const int64_t i0 = c * chunk, m = std::min(chunk, n - i0);
    fill_gaussian(d + i0, m, seed, static_cast<uint64_t>(i0));
    for (int64_t i = i0; i < i0 + m; ++i) d[i] = offset + scale * d[i];
  });
  return t;
}

Result<vae::VaeDecoder> random_wan21_vae(uint64_t seed) {
  vae::VaeConfig cfg;  // the released config: dim 96, z 16, dim_mult [1, 2, 4, 4], 2 res blocks
  cfg.latents_mean = vae::wan21_latents_mean();
  cfg.latents_std = vae::wan21_latents_std();
  VDIT_ASSIGN(auto layers, vae::decoder_layers(cfg));
  GeneratedTensorFile f;
  uint64_t k = 0;
  for (const auto& l : layers) {
    for (const auto& t : l.tensors) {
      const bool gamma = t.name.find("gamma") != std::string::npos, bias = t.shape.size() == 1;
      int64_t fan_in = 1;
      for (size_t i = 1; i < t.shape.size(); ++i) fan_in *= t.shape[i];
      const float sd = gamma ? 0.1f : bias ? 0.05f : 1.0f / std::sqrt(static_cast<float>(fan_in));
      VDIT_ASSIGN(Tensor x, gaussian(t.shape, seed * 1000003 + k++, sd, gamma ? 1.f : 0.f));
      f.add(t.name, std::move(x));
    }
  }
  f.set_metadata("dim", "96");
  f.set_metadata("z_dim", "16");
  f.set_metadata("dim_mult", "[1, 2, 4, 4]");
  return vae::VaeDecoder::load(f);
}

// Decodes z into [3·T·H·W] (frame-major) with any decoder.
template <class Decoder>
Result<std::vector<float>> decode_to_vector(Decoder& dec, const Tensor& z) {
  std::vector<float> out;
  Status s = dec.decode(z, [&](int64_t, const Tensor& f) {
    out.insert(out.end(), f.f32(), f.f32() + f.numel());
    return Status::ok();
  });
  if (!s.is_ok()) return s;
  return out;
}

// PSNR in dB of `a` against `ref`, values in [-1, 1] (peak-to-peak 2).
double psnr(const std::vector<float>& a, const std::vector<float>& ref) {
  double sq = 0;
  for (size_t i = 0; i < a.size() && i < ref.size(); ++i) sq += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
  const double mse = ref.empty() ? 0 : sq / static_cast<double>(ref.size());
  return mse > 0 ? 10.0 * std::log10(4.0 / mse) : INFINITY;
}

double rel_diff(const std::vector<float>& a, const std::vector<float>& ref) {
  double m = 0, r = 0;
  for (size_t i = 0; i < a.size() && i < ref.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - ref[i]);
    m = std::isnan(d) ? INFINITY : std::max(m, d);
    r = std::max(r, std::fabs(static_cast<double>(ref[i])));
  }
  return a.size() == ref.size() ? (r > 0 ? m / r : m) : INFINITY;
}

size_t device_used() {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
  return total_b - free_b;
}

int run_bench_vae(const BenchVaeOptions& o) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines survive a time limit that kills us
  int64_t h = 0, w = 0;
  if (o.size == "480p") h = 60, w = 104;
  else if (o.size == "720p") h = 90, w = 160;
  else return report_error("--size " + o.size + ": use 480p (832x480) or 720p (1280x720)");
  if (o.frames < 1 || (o.frames - 1) % 4 != 0) return report_error("--frames must be 1 + 4k (e.g. 81)");
  const int64_t F = (o.frames - 1) / 4 + 1;
  std::vector<vae::VaeCudaPrecision> precisions;
  for (size_t a = 0; a <= o.precision.size();) {
    size_t b = o.precision.find(',', a);
    if (b == std::string::npos) b = o.precision.size();
    auto p = vae::parse_vae_cuda_precision(o.precision.substr(a, b - a));
    if (!p) return report_error("--precision: " + p.status().message());
    precisions.push_back(*p);
    a = b + 1;
  }

  const size_t used0 = device_used();
  auto t0 = std::chrono::steady_clock::now();
  auto cpu = random_wan21_vae(o.seed);
  if (!cpu) return report_error(cpu.status().message());
  std::printf("random Wan2.1 VAE decoder (%s) in %.1f s\n", cpu->config().to_string().c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  nlohmann::json j = {{"size", o.size}, {"frames", o.frames}, {"latent", {16, F, h, w}}, {"seed", o.seed}};

  std::vector<float> ref;
  Tensor zs;
  if (o.validate) {
    auto z = gaussian({16, 2, 3, 4}, o.seed + 17, 1.f, 0.f);
    if (!z) return report_error(z.status().message());
    zs = *z;
    auto r = decode_to_vector(*cpu, zs);
    if (!r) return report_error("CPU validation decode: " + r.status().message());
    ref = std::move(r).value();
  }

  auto z = gaussian({16, F, h, w}, o.seed + 29, 1.f, 0.f);
  if (!z) return report_error(z.status().message());
  bool ok = true;
  // Written after every precision, so a run cut short by a time limit still leaves its finished parts.
  auto flush = [&]() -> Status {
    j["validated"] = o.validate ? ok : false;
    if (o.json.empty()) return Status::ok();
    std::ofstream f(o.json);
    f << j.dump(2) << "\n";
    if (!f) return io_error("cannot write " + o.json);
    return Status::ok();
  };
  std::vector<float> full_ref;  // the first precision's decoded video (warm-up), for the PSNR of the others
  for (vae::VaeCudaPrecision p : precisions) {
    const char* pname = vae::vae_cuda_precision_name(p);
    vae::VaeCudaOptions co;
    co.precision = p;
    co.conv_per_tap = o.per_tap;
    auto gpu = vae::VaeDecoderCuda::create(*cpu, co);
    if (!gpu) return report_error(gpu.status().message());
    nlohmann::json run = {{"precision", pname}, {"conv", o.per_tap ? "per-tap" : "5d"}};
    if (o.validate) {
      auto g = decode_to_vector(**gpu, zs);
      if (!g) return report_error(std::string("CUDA validation decode: ") + g.status().message());
      const double rel = rel_diff(*g, ref);
      const double tol = p == vae::VaeCudaPrecision::fp32 ? kFp32Tol : p == vae::VaeCudaPrecision::tf32 ? kTf32Tol
                                                                                                     : kBf16Tol;
      const double snr = psnr(*g, ref);
      std::printf("validate %s: CUDA vs CPU on latent [16, 2, 3, 4] (5 frames 24x32): rel %.3g (tol %.0e), PSNR %.1f "
                  "dB %s\n", pname, rel, tol, snr, rel <= tol ? "ok" : "FAILED");
      run["validate_rel"] = rel;
      run["validate_psnr_db"] = snr;
      if (!(rel <= tol)) ok = false;
    }
    int64_t frames_out = 0;
    double sq = 0;  // squared error against the first precision's video (warm-up decode only)
    const bool first = p == precisions[0];
    auto count = [&](int64_t, const Tensor&) {
      ++frames_out;
      return Status::ok();
    };
    auto keep = [&](int64_t t, const Tensor& f) {
      ++frames_out;
      if (first) {
        full_ref.insert(full_ref.end(), f.f32(), f.f32() + f.numel());
      } else if (static_cast<size_t>((t + 1) * f.numel()) <= full_ref.size()) {
        const float* r = full_ref.data() + t * f.numel();
        for (int64_t k = 0; k < f.numel(); ++k) sq += (double(f.f32()[k]) - r[k]) * (double(f.f32()[k]) - r[k]);
      }
      return Status::ok();
    };
    std::vector<double> ms;
    for (int i = 0; i < o.warmup + o.iters; ++i) {
      frames_out = 0;
      auto a = std::chrono::steady_clock::now();
      Status s = i == 0 && o.warmup > 0 ? (*gpu)->decode(*z, keep) : (*gpu)->decode(*z, count);
      const double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
      if (!s.is_ok()) return report_error(std::string(pname) + " decode: " + s.message());
      if (frames_out != o.frames) return report_error("decode produced " + std::to_string(frames_out) + " frames");
      std::printf("  %s decode %d%s: %.1f ms\n", pname, i, i < o.warmup ? " (warm-up, plans algorithms)" : "", dt);
      std::fflush(stdout);
      if (i == 0) run["first_decode_ms"] = dt;
      if (i >= o.warmup) ms.push_back(dt);
    }
    if (!first && !full_ref.empty() && o.warmup > 0) {
      const double mse = sq / static_cast<double>(full_ref.size());
      const double db = mse > 0 ? 10.0 * std::log10(4.0 / mse) : INFINITY;
      std::printf("%s vs %s on the full-size video: PSNR %.1f dB (range [-1, 1])\n", pname,
                  vae::vae_cuda_precision_name(precisions[0]), db);
      run["psnr_vs_first_db"] = db;
    }
    std::sort(ms.begin(), ms.end());
    const vae::VaeCudaMemory m = (*gpu)->memory();
    const double gib = 1024.0 * 1024.0 * 1024.0;
    const double med = ms.empty() ? 0 : ms[ms.size() / 2];
    const size_t used = device_used();
    std::printf("%s: %s %lld frames: median %.1f ms (min %.1f) = %.1f frames/s; decoder memory %.2f GiB (weights "
                "%.2f, activations %.2f, workspace %.2f); device used %.2f GiB above the start\n",
                pname, o.size.c_str(), (long long)o.frames, med, ms.empty() ? 0 : ms[0], o.frames / (med / 1000.0),
                m.peak_total / gib, m.weights / gib, m.activations / gib, m.workspace / gib,
                (used > used0 ? used - used0 : 0) / gib);
    std::printf("cuDNN plans (%s):\n%s", pname, (*gpu)->describe_plans().c_str());
    run["ms"] = med;
    run["min_ms"] = ms.empty() ? 0 : ms[0];
    run["all_ms"] = ms;
    run["peak_gib"] = m.peak_total / gib;
    run["weights_gib"] = m.weights / gib;
    run["activations_gib"] = m.activations / gib;
    run["workspace_gib"] = m.workspace / gib;
    run["device_used_gib"] = (used > used0 ? used - used0 : 0) / gib;
    j["runs"].push_back(run);
    Status fs = flush();
    if (!fs.is_ok()) return report_error(fs.message());
    std::fflush(stdout);
  }
  return ok ? 0 : report_error("the CUDA decode does not match the CPU decoder (see the validate lines above)");
}

std::function<int()> setup_bench_vae(CLI::App& app) {
  auto o = std::make_shared<BenchVaeOptions>();
  app.add_option("--size", o->size, "480p (latent 60x104) or 720p (90x160)")->check(CLI::IsMember({"480p", "720p"}));
  app.add_option("--frames", o->frames, "video frames, 1 + 4k (81 = 21 latent frames)");
  app.add_option("--precision", o->precision, "comma-separated list of fp32, tf32, bf16 (the first is the PSNR "
                                              "reference)");
  app.add_option("--iters", o->iters, "timed decodes per precision")->check(CLI::PositiveNumber);
  app.add_option("--warmup", o->warmup, "untimed decodes first (the first one picks the cuDNN algorithms)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", o->seed, "seed of the random weights and latents");
  app.add_flag("--per-tap", o->per_tap, "run causal k3 convs as three accumulated 2D convs (default: one 5D conv)");
  app.add_flag("!--no-validate", o->validate, "skip the small CPU-vs-CUDA check");
  app.add_option("--json", o->json, "write the results as JSON");
  return [o] { return run_bench_vae(*o); };
}

}  // namespace

VDIT_REGISTER_COMMAND("bench vae", "Time the CUDA Wan VAE streaming decode at full size (random weights)", 62,
                      setup_bench_vae);

}  // namespace vdit::cli
