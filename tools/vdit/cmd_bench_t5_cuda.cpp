// `vdit bench t5`: times the UMT5-XXL encoder on the GPU (vocab 256384, dim 4096, 64 heads, ffn 10240, 24
// layers, 32 buckets) with seeded random weights generated on the device, after validating the GPU encoder
// against the CPU encoder on a reduced model (same head dim and buckets, narrower, 2 layers; the CPU runs the
// very weights downloaded from the GPU) in both precisions. Reports time per encode (host ids in, host f32
// out), TFLOP/s, the encoder's weight and workspace memory and the device memory the run took, and the four
// layer GEMMs timed alone (cuBLASLt on random operands), which splits the time into GEMMs and the rest.
// Does not: load real weights or tokenize (random ids in [2, vocab), last one </s>).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "dit/core/check_cuda.h"
#include "dit/ops/cuda/dit_kernels.h"
#include "dit/ops/cuda/lt_gemm.h"
#include "dit/text/t5_encoder.h"
#include "dit/text/t5_encoder_cuda.h"
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

// Validation bounds (max|Δ| / max|ref|): f32 is cuBLAS without TF32 against the f32 CPU encoder; bf16 is
// twice the official bf16-vs-fp32 deviation of the tiny golden (3.1e-2, wan.md §7.5).
constexpr double kF32Tol = 1e-4;
constexpr double kBf16Tol = 6.2e-2;
// PyTorch peer (docs kernels.md §8): the official UMT5-XXL encoder, bf16, 512 tokens, H200.
constexpr double kPyTorchMs = 43.5;

struct BenchT5Options {
  int64_t tokens = 512;
  std::string precision = "bf16";
  int iters = 10;
  int warmup = 2;
  int layers = 0;  // 0 = 24
  int autotune = 8;
  uint64_t seed = 1;
  bool validate = true;
  std::string json;
};

text::T5Config xxl_config(int layers) {
  text::T5Config c;
  c.vocab = 256384, c.dim = 4096, c.dim_attn = 4096, c.dim_ffn = 10240, c.num_heads = 64;
  c.num_layers = layers > 0 ? layers : 24;
  c.num_buckets = 32, c.max_distance = 128;
  return c;
}

double rel_error(const Tensor& a, const Tensor& ref) {
  double max_d = 0, max_r = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = std::fabs(double(a.f32()[i]) - ref.f32()[i]);
    max_d = std::isfinite(d) ? std::max(max_d, d) : INFINITY;
    max_r = std::max(max_r, std::fabs(double(ref.f32()[i])));
  }
  return max_r > 0 ? max_d / max_r : max_d;
}

// One reduced model per precision: GPU encode vs the CPU encoder on the downloaded weights, with a padded
// mask (full output) and the trimmed output. Returns the worse relative error, or an error.
Result<double> validate(text::T5Precision p, uint64_t seed, nlohmann::json& report) {
  text::T5Config c;
  c.vocab = 1000, c.dim = 512, c.dim_attn = 512, c.dim_ffn = 1280, c.num_heads = 8, c.num_layers = 2;
  const int64_t L = 200, valid = 150;  // L > max_distance: the log buckets and the clamp are used
  text::T5CudaOptions o;
  o.precision = p;
  VDIT_ASSIGN(auto gpu, text::T5EncoderCuda::random(c, seed, o));
  VDIT_ASSIGN(text::T5Weights w, gpu->download_weights());
  const text::T5Encoder cpu = text::T5Encoder::from_weights(std::move(w));
  std::vector<int32_t> ids(L);
  std::vector<uint8_t> mask(L);
  for (int64_t i = 0; i < L; ++i) {
    ids[i] = i + 1 == valid ? 1 : i < valid ? static_cast<int32_t>(2 + (i * 7919) % (c.vocab - 2)) : 0;
    mask[i] = i < valid;
  }
  VDIT_ASSIGN(Tensor ref_full, cpu.encode(ids, mask));
  VDIT_ASSIGN(Tensor ref_trim, cpu.encode_trimmed(ids, mask));
  VDIT_ASSIGN(Tensor full, gpu->encode(ids, mask));
  VDIT_ASSIGN(Tensor trim, gpu->encode_trimmed(ids, mask));
  const double e_full = rel_error(full, ref_full), e_trim = rel_error(trim, ref_trim);
  const double tol = p == text::T5Precision::f32 ? kF32Tol : kBf16Tol;
  std::printf("validate %-4s vs CPU (%s, L %lld, %lld valid): full rel %.3e, trimmed rel %.3e (tol %.1e) %s\n",
              text::t5_precision_name(p), c.summary().c_str(), (long long)L, (long long)valid, e_full, e_trim, tol,
              std::max(e_full, e_trim) <= tol ? "ok" : "FAILED");
  report[text::t5_precision_name(p)] = {{"full_rel", e_full}, {"trimmed_rel", e_trim}, {"tol", tol}};
  if (!(std::max(e_full, e_trim) <= tol)) {
    return internal_error(strfmt("bench t5: the GPU encoder (%s) differs from the CPU encoder by rel %.3e > %.1e",
                                 text::t5_precision_name(p), std::max(e_full, e_trim), tol));
  }
  return std::max(e_full, e_trim);
}

struct GemmTiming {
  const char* name;
  int64_t N, K;
  double ms = 0;
};

// The layer's four GEMMs at M = L, each timed alone (median of 10 after 2 warm-ups, CUDA events).
Status time_layer_gemms(std::vector<GemmTiming>& gemms, int64_t L, bool bf16, int autotune) {
  int64_t max_nk = 0, max_n = 0, max_k = 0;
  for (const GemmTiming& g : gemms) {
    max_nk = std::max(max_nk, g.N * g.K), max_n = std::max(max_n, g.N), max_k = std::max(max_k, g.K);
  }
  const size_t es = bf16 ? 2 : 4;
  VDIT_ASSIGN(DeviceBuffer x, DeviceBuffer::allocate(static_cast<size_t>(L * max_k) * es));
  VDIT_ASSIGN(DeviceBuffer w, DeviceBuffer::allocate(static_cast<size_t>(max_nk) * es));
  VDIT_ASSIGN(DeviceBuffer y, DeviceBuffer::allocate(static_cast<size_t>(L * max_n) * es));
  VDIT_TRY(ops::cuda::fill_gaussian(x.data(), bf16, L * max_k, 11, 1.f, 0.f, nullptr));
  VDIT_TRY(ops::cuda::fill_gaussian(w.data(), bf16, max_nk, 12, 0.02f, 0.f, nullptr));
  VDIT_ASSIGN(auto lt, ops::cuda::LtGemm::create(size_t{32} << 20, autotune));
  cudaEvent_t a = nullptr, b = nullptr;
  VDIT_CHECK(cudaEventCreate(&a));
  VDIT_CHECK(cudaEventCreate(&b));
  Status st;
  for (GemmTiming& g : gemms) {
    ops::cuda::GemmCall c;
    c.y = y.data(), c.x = x.data(), c.w = w.data(), c.M = L, c.N = g.N, c.K = g.K;
    c.type = bf16 ? ops::cuda::GemmType::bf16 : ops::cuda::GemmType::f32;
    c.epilogue = ops::cuda::GemmEpilogue::none;
    std::vector<float> ms;
    for (int i = 0; i < 12 && st.is_ok(); ++i) {
      cudaEventRecord(a, nullptr);
      st = lt->run(c, nullptr);
      cudaEventRecord(b, nullptr);
      float t = 0;
      if (st.is_ok() && cudaEventSynchronize(b) == cudaSuccess && cudaEventElapsedTime(&t, a, b) == cudaSuccess &&
          i >= 2) {
        ms.push_back(t);
      }
    }
    if (!st.is_ok() || ms.empty()) break;
    std::sort(ms.begin(), ms.end());
    g.ms = ms[ms.size() / 2];
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  VDIT_TRY(st);
  VDIT_CHECK(cudaGetLastError());
  return Status::ok();
}

int run_bench_t5(const BenchT5Options& o) {
  using clock = std::chrono::steady_clock;
  auto precision = text::parse_t5_precision(o.precision);
  if (!precision) return report_error(precision.status().message());
  if (o.tokens < 1 || o.iters < 1 || o.warmup < 0) return report_error("--tokens and --iters must be >= 1");
  nlohmann::json report;
  if (o.validate) {
    for (text::T5Precision p : {text::T5Precision::f32, text::T5Precision::bf16}) {
      auto v = validate(p, o.seed, report["validation"]);
      if (!v) return report_error(v.status().message());
    }
  }

  const text::T5Config c = xxl_config(o.layers);
  size_t free0 = 0, total = 0;
  if (cudaMemGetInfo(&free0, &total) != cudaSuccess) return report_error("cudaMemGetInfo failed: no usable GPU");
  text::T5CudaOptions opts;
  opts.precision = *precision;
  opts.gemm_autotune = o.autotune;
  const auto t_init = clock::now();
  auto enc = text::T5EncoderCuda::random(c, o.seed, opts);
  if (!enc) return report_error(enc.status().message());
  const double init_s = std::chrono::duration<double>(clock::now() - t_init).count();

  std::vector<int32_t> ids(static_cast<size_t>(o.tokens));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(2 + (i * 104729 + 7) % (c.vocab - 2));
  ids.back() = 1;  // </s>
  double first_ms = 0;
  for (int i = 0; i < o.warmup; ++i) {
    const auto t0 = clock::now();
    auto out = (*enc)->encode(ids);
    if (!out) return report_error(out.status().message());
    if (i == 0) first_ms = 1e3 * std::chrono::duration<double>(clock::now() - t0).count();
  }
  std::vector<double> ms;
  bool finite = true;
  for (int i = 0; i < o.iters; ++i) {
    const auto t0 = clock::now();
    auto out = (*enc)->encode(ids);
    if (!out) return report_error(out.status().message());
    ms.push_back(1e3 * std::chrono::duration<double>(clock::now() - t0).count());
    if (i == 0) finite = std::all_of(out->f32(), out->f32() + out->numel(), [](float v) { return std::isfinite(v); });
  }
  size_t free1 = 0;
  cudaMemGetInfo(&free1, &total);
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2], best = ms.front();
  const double L = static_cast<double>(o.tokens);
  const double D = c.dim, DA = c.dim_attn, F = c.dim_ffn;
  const double flop = c.num_layers * (2 * L * (4 * DA * D + 3 * F * D) + 4 * L * L * DA);
  const text::T5CudaMemory mem = (*enc)->memory();
  const double gib = 1.0 / (1 << 30);

  std::printf("bench t5: %s, %s, %lld tokens (all valid), %d iterations after %d warm-up (autotune %d)\n",
              c.summary().c_str(), o.precision.c_str(), (long long)o.tokens, o.iters, o.warmup, o.autotune);
  std::printf("  random init on the GPU %.2f s; first encode %.2f ms\n", init_s, first_ms);
  std::printf("  encode: median %.2f ms, best %.2f ms (host ids in, host f32 out), %.0f TFLOP/s; output %s\n", median,
              best, flop / (median * 1e-3) / 1e12, finite ? "finite" : "HAS NaN/Inf");
  std::printf("  memory: weights %.2f GiB, workspace %.3f GiB, device memory taken by the run %.2f GiB\n",
              mem.weight_bytes * gib, mem.workspace_bytes * gib, double(free0 - std::min(free0, free1)) * gib);
  if (o.tokens == 512 && c.num_layers == 24 && *precision == text::T5Precision::bf16) {
    std::printf("  PyTorch official bf16 (kernels.md §8): %.1f ms, 10.9 GiB -> speed-up %.2fx\n", kPyTorchMs,
                kPyTorchMs / median);
  }
  std::vector<GemmTiming> gemms = {{"q|k|v", 3 * c.dim_attn, c.dim},
                                    {"o", c.dim, c.dim_attn},
                                    {"gate|fc1", 2 * c.dim_ffn, c.dim},
                                    {"fc2", c.dim, c.dim_ffn}};
  const Status gs = time_layer_gemms(gemms, o.tokens, *precision == text::T5Precision::bf16, o.autotune);
  if (gs.is_ok()) {
    double layer_ms = 0;
    for (const GemmTiming& g : gemms) {
      const double tf = 2.0 * o.tokens * g.N * g.K / (g.ms * 1e-3) / 1e12;
      std::printf("  gemm %-8s [%lld, %lld] x [%lld, %lld]^T: %7.3f ms, %4.0f TFLOP/s\n", g.name, (long long)o.tokens,
                  (long long)g.K, (long long)g.N, (long long)g.K, g.ms, tf);
      report["gemms"][g.name] = {{"ms", g.ms}, {"tflops", tf}};
      layer_ms += g.ms;
    }
    std::printf("  GEMMs alone: %.3f ms per layer, %.2f ms per encode (%.0f%% of the median); the rest (attention, "
                "norms, GELU, copies, launches) %.2f ms\n",
                layer_ms, layer_ms * c.num_layers, 100 * layer_ms * c.num_layers / median,
                median - layer_ms * c.num_layers);
    report["gemm_ms_per_encode"] = layer_ms * c.num_layers;
  } else {
    std::printf("  GEMM components failed: %s\n", gs.to_string().c_str());
  }
  report["config"] = c.summary();
  report["precision"] = o.precision;
  report["tokens"] = o.tokens;
  report["iters"] = o.iters;
  report["median_ms"] = median;
  report["best_ms"] = best;
  report["first_ms"] = first_ms;
  report["tflops"] = flop / (median * 1e-3) / 1e12;
  report["weight_bytes"] = mem.weight_bytes;
  report["workspace_bytes"] = mem.workspace_bytes;
  report["device_bytes_taken"] = free0 - std::min(free0, free1);
  report["finite"] = finite;
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << report.dump(2) << "\n";
    if (!f) return report_error("cannot write " + o.json);
  }
  return finite ? 0 : 1;
}

std::function<int()> setup_bench_t5(CLI::App& app) {
  auto o = std::make_shared<BenchT5Options>();
  app.add_option("--tokens", o->tokens, "tokens per encode (Wan pads prompts to 512)");
  app.add_option("--precision", o->precision, "bf16 (default) or f32")->check(CLI::IsMember({"bf16", "f32"}));
  app.add_option("--iters", o->iters, "timed encodes");
  app.add_option("--warmup", o->warmup, "untimed encodes first (the first one picks GEMM algorithms)");
  app.add_option("--layers", o->layers, "layers (0 = UMT5-XXL's 24)");
  app.add_option("--autotune", o->autotune, "cuBLASLt candidates timed per GEMM shape (0/1 = heuristic's first)");
  app.add_option("--seed", o->seed, "seed of the random weights");
  app.add_flag("!--no-validate", o->validate, "skip the check against the CPU encoder");
  app.add_option("--json", o->json, "write the results as JSON to this file");
  return [o] { return run_bench_t5(*o); };
}

}  // namespace

VDIT_REGISTER_COMMAND("bench t5", "Time the UMT5-XXL text encoder on the GPU at full size (needs CUDA)", 62,
                      setup_bench_t5);

}  // namespace vdit::cli
