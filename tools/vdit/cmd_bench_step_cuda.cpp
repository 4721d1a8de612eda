// `vdit bench step`: times the Wan2.1 DiT forward on the GPU at full size (or at the built-in vdit-tiny size,
// where launches dominate) with random weights generated on the device (seeded Philox; no host copy), after
// validating the CUDA forward against the CPU backend on a reduced model (same dims, 2 layers, small latent;
// CPU weights = the same values copied back). Reports time per forward and per CFG step (2 forwards), whether
// the forwards ran as CUDA graphs (--cuda-graph), the self-attention share and its TFLOP/s (an extra, eager
// forward with CUDA events around every self-attention call), the GEMM throughput of the rest, and GPU memory.
// Does not: load real weights, sample, or time the text encoder / VAE.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "attention/config_reader.h"
#include "attention/cuda/cudnn_sdpa.h"
#include "attention/methods/method.h"
#include "dit/core/check_cuda.h"
#include "dit/core/rng.h"
#include "dit/model/wan_dit_cpu.h"
#include "dit/model/wan_dit_cuda.h"
#include "dit/model/wan_embed.h"
#include "dit/ops/cuda/dit_kernels.h"
#include "dit/ops/cuda/lt_gemm.h"
#include "tools/vdit/command.h"
#include "tools/vdit/synthetic_paro_plan.h"

namespace vdit::cli {
namespace {

// bf16 activations against the f32 CPU forward with the same (bf16-valued) weights: the official autocast
// run is 3.7e-3 off fp32 on the tiny golden; full-size widths and 512 text tokens add a little.
constexpr double kValidateTol = 2e-2;

struct BenchStepOptions {
  std::string model_config = "wan2.1-1.3b";
  std::string size = "480p";
  int64_t frames = 81;
  std::string attention = "dense";
  std::string attention_config;  // JSON text or file; empty: the method's preset
  double paro_density = 0.3;     // synthetic PARO plan (when the config names no plan)
  int paro_block = 128;
  int iters = 5;
  int warmup = 2;
  int layers = 0;  // 0 = the config's
  int step = 25;   // denoising step index of the timed forwards (of 50): past every method's dense warm-up
  uint64_t seed = 1;
  bool validate = true;
  bool components = true;
  std::string cuda_graph = "on";  // set_cuda_dit_graphs
  std::string json;
};

Result<model::WanDitConfig> full_config(const std::string& name) {
  model::WanDitConfig c;
  c.freq_dim = 256, c.text_dim = 4096, c.text_len = 512, c.in_dim = 16, c.out_dim = 16;
  if (name == "wan2.1-1.3b") {
    c.dim = 1536, c.ffn_dim = 8960, c.num_heads = 12, c.num_layers = 30;
  } else if (name == "wan2.1-14b") {
    c.dim = 5120, c.ffn_dim = 13824, c.num_heads = 40, c.num_layers = 40;
  } else if (name == "vdit-tiny") {  // the built-in model (samples/models/vdit-tiny-t2v, its metadata)
    c.dim = 256, c.ffn_dim = 1024, c.num_heads = 4, c.num_layers = 4, c.text_dim = 128, c.text_len = 32;
  } else {
    return invalid_argument("--model-config " + name + ": use wan2.1-1.3b, wan2.1-14b or vdit-tiny");
  }
  return c;
}

Result<Shape> latent_shape(const std::string& size, int64_t frames) {
  if (frames < 1 || (frames - 1) % 4 != 0) {
    return invalid_argument(strfmt("--frames %lld: the Wan VAE needs 4k+1 frames (e.g. 81)", (long long)frames));
  }
  const int64_t T = (frames - 1) / 4 + 1;
  if (size == "480p") return Shape{16, T, 480 / 8, 832 / 8};
  if (size == "720p") return Shape{16, T, 720 / 8, 1280 / 8};
  if (size == "256") return Shape{16, T, 256 / 8, 256 / 8};
  return invalid_argument("--size " + size + ": use 480p, 720p or 256");
}

Result<std::unique_ptr<attn::AttentionMethod>> make_method(const std::string& method, const model::WanDitConfig& c,
                                                           const Shape& latent, const BenchStepOptions* o = nullptr) {
  attn::ModelInfo info;
  info.num_layers = static_cast<int>(c.num_layers);
  info.num_heads = static_cast<int>(c.num_heads);
  info.head_dim = static_cast<int>(c.head_dim());
  info.grid = {latent[1] / c.patch_size[0], latent[2] / c.patch_size[1], latent[3] / c.patch_size[2]};
  info.num_steps = 50;
  nlohmann::json config;
  if (o && !o->attention_config.empty()) {
    VDIT_ASSIGN(config, attn::load_attention_config(o->attention_config));
  }
  if (o && method == "paro" && !(config.is_object() && config.contains("plan"))) {
    // Random weights have no attention worth calibrating: time PARO on a synthetic plan of the same shape.
    SyntheticParoPlan spec;
    spec.layers = info.num_layers, spec.heads = info.num_heads, spec.grid = info.grid;
    spec.block = o->paro_block, spec.density = o->paro_density, spec.seed = o->seed;
    const std::string path = strfmt("/tmp/vdit_bench_paro_plan_%lld_%lldx%lldx%lld_%d_%g.safetensors",
                                    (long long)spec.layers, (long long)info.grid.f, (long long)info.grid.h,
                                    (long long)info.grid.w, spec.block, spec.density);
    VDIT_TRY(write_synthetic_paro_plan(spec, path));
    if (!config.is_object()) config = nlohmann::json::object();
    config["plan"] = path;
    std::printf("paro: synthetic plan (random orders and masks, block %d, density %g) in %s\n", spec.block,
                spec.density, path.c_str());
  }
  return attn::make_attention(method, config, info);
}

// Forwards every call to `inner`, bracketing the GPU ones with CUDA events on the call's stream.
class TimedAttention : public attn::SelfAttention {
 public:
  explicit TimedAttention(attn::SelfAttention& inner) : inner_(inner) {}
  ~TimedAttention() override {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
  Status forward(const attn::AttentionCall& call, const float* q, const float* k, const float* v, int64_t L, int NH,
                 int HD, float* out) override {
    return inner_.forward(call, q, k, v, L, NH, HD, out);
  }
  Status forward_device(const attn::AttentionCall& call, const attn::DeviceQKV& qkv) override {
    cudaEvent_t start, stop;
    VDIT_CHECK(cudaEventCreate(&start));
    VDIT_CHECK(cudaEventCreate(&stop));
    events_.push_back(start);
    events_.push_back(stop);
    auto stream = static_cast<cudaStream_t>(qkv.stream);
    VDIT_CHECK(cudaEventRecord(start, stream));
    VDIT_TRY(inner_.forward_device(call, qkv));
    VDIT_CHECK(cudaEventRecord(stop, stream));
    flops_ += 4.0 * static_cast<double>(qkv.L) * static_cast<double>(qkv.keys()) * qkv.NH * qkv.HD;
    return Status::ok();
  }
  const char* name() const override { return inner_.name(); }
  // Total milliseconds of the recorded calls (after the forward synchronized).
  Result<double> total_ms() const {
    double ms = 0;
    for (size_t i = 0; i + 1 < events_.size(); i += 2) {
      float t = 0;
      VDIT_CHECK(cudaEventElapsedTime(&t, events_[i], events_[i + 1]));
      ms += t;
    }
    return ms;
  }
  size_t calls() const { return events_.size() / 2; }
  double flops() const { return flops_; }

 private:
  attn::SelfAttention& inner_;
  std::vector<cudaEvent_t> events_;
  double flops_ = 0;
};

Result<Tensor> random_tensor(uint64_t seed, Shape shape) { return gaussian_noise(seed, std::move(shape)); }

// The CUDA forward vs the CPU backend on the same random weights: the full widths with 2 layers, a latent of
// 32 tokens and 64 text tokens (the CPU GEMMs of the GPU machine run without BLAS: keep them small).
Result<double> validate(const model::WanDitConfig& full, const BenchStepOptions& o) {
  model::WanDitConfig c = full;
  c.num_layers = 2;
  c.text_len = 64;
  const Shape latent{16, 2, 8, 8};  // grid 2x4x4, 32 tokens
  double rel = 0;
  {
    VDIT_ASSIGN(std::unique_ptr<model::WanDit> gpu, model::make_random_wan_dit_cuda(c, o.seed + 1000));
    VDIT_ASSIGN(model::WanDitWeights host, model::download_wan_dit_cuda_weights(*gpu));
    std::unique_ptr<model::WanDit> cpu = model::make_wan_dit_cpu(nullptr, c, std::move(host));
    VDIT_ASSIGN(Tensor x, random_tensor(o.seed + 1, latent));
    VDIT_ASSIGN(Tensor ctx, random_tensor(o.seed + 2, {c.text_len, c.text_dim}));
    VDIT_ASSIGN(std::unique_ptr<attn::AttentionMethod> gpu_attn, make_method("dense", c, latent));
    auto cpu_attn = attn::make_dense_cpu_attention();
    VDIT_ASSIGN(auto gpu_text, gpu->prepare_text(ctx));
    VDIT_ASSIGN(auto cpu_text, cpu->prepare_text(ctx));
    Tensor a, b;
    VDIT_TRY(gpu->forward(&a, x, 937, *gpu_text, *gpu_attn));
    VDIT_TRY(cpu->forward(&b, x, 937, *cpu_text, *cpu_attn));
    double max_abs = 0, max_ref = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
      const double d = std::fabs(static_cast<double>(a.f32()[i]) - b.f32()[i]);
      max_abs = std::isfinite(d) ? std::max(max_abs, d) : INFINITY;
      max_ref = std::max(max_ref, std::fabs(static_cast<double>(b.f32()[i])));
    }
    rel = max_ref > 0 ? max_abs / max_ref : max_abs;
  }
  return rel;
}

// Milliseconds per call of `fn` on the default stream (1 warm-up, then `reps` calls between two events).
Result<double> time_calls(const std::function<Status()>& fn, int reps = 3) {
  VDIT_TRY(fn());
  cudaEvent_t a, b;
  VDIT_CHECK(cudaEventCreate(&a));
  VDIT_CHECK(cudaEventCreate(&b));
  Status st = Status::ok();
  if (cudaEventRecord(a, nullptr) == cudaSuccess) {
    for (int i = 0; i < reps && st.is_ok(); ++i) st = fn();
  }
  cudaEventRecord(b, nullptr);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  VDIT_TRY(st);
  return static_cast<double>(ms) / reps;
}

// The forward's GEMM shapes and element-wise kernels timed alone on scratch buffers (a kernel lab view of
// where the non-attention time goes); adds "components" to `j`.
Status bench_components(const model::WanDitConfig& c, const Shape& latent, nlohmann::json* j) {
  const int64_t gf = latent[1], gh = latent[2] / 2, gw = latent[3] / 2, L = gf * gh * gw;
  const int64_t D = c.dim, Fh = c.ffn_dim, maxK = std::max(D, Fh), maxN = std::max(3 * D, Fh);
  VDIT_ASSIGN(auto lt, ops::cuda::LtGemm::create());
  VDIT_ASSIGN(auto lt_tuned, ops::cuda::LtGemm::create(size_t{64} << 20, 8));  // fastest of 8 candidates
  VDIT_ASSIGN(DeviceBuffer x, DeviceBuffer::allocate(static_cast<size_t>(L * maxK) * 2));
  VDIT_ASSIGN(DeviceBuffer w, DeviceBuffer::allocate(static_cast<size_t>(maxN * maxK) * 2));
  VDIT_ASSIGN(DeviceBuffer bias, DeviceBuffer::allocate(static_cast<size_t>(maxN) * 2));
  VDIT_ASSIGN(DeviceBuffer y, DeviceBuffer::allocate(static_cast<size_t>(L * maxN) * 2));
  VDIT_TRY(ops::cuda::fill_gaussian(x.data(), true, L * maxK, 11, 1.f, 0.f, nullptr));
  VDIT_TRY(ops::cuda::fill_gaussian(w.data(), true, maxN * maxK, 12, 0.02f, 0.f, nullptr));
  VDIT_TRY(ops::cuda::fill_gaussian(bias.data(), true, maxN, 13, 0.05f, 0.f, nullptr));
  struct G {
    const char* name;
    int64_t N, K;
    ops::cuda::GemmEpilogue epi;
    int per_layer;
  };
  const G gemms[] = {{"qkv", 3 * D, D, ops::cuda::GemmEpilogue::bias, 1},
                     {"o / cross q / cross o", D, D, ops::cuda::GemmEpilogue::bias, 3},
                     {"ffn0 + GELU", Fh, D, ops::cuda::GemmEpilogue::bias_gelu_tanh, 1},
                     {"ffn2", D, Fh, ops::cuda::GemmEpilogue::bias, 1}};
  nlohmann::json comp = nlohmann::json::object();
  double per_layer_ms = 0;
  for (const G& g : gemms) {
    ops::cuda::GemmCall call;
    call.y = y.data(), call.x = x.data(), call.w = w.data(), call.bias = bias.data();
    call.M = L, call.N = g.N, call.K = g.K, call.epilogue = g.epi;
    VDIT_ASSIGN(double ms, time_calls([&] { return lt->run(call, nullptr); }));
    VDIT_ASSIGN(double tuned_ms, time_calls([&] { return lt_tuned->run(call, nullptr); }));
    const double tflops = 2.0 * L * g.N * g.K / (ms * 1e-3) / 1e12;
    std::printf("  gemm %-22s [%lld, %lld] x [%lld, %lld]^T: %7.3f ms, %4.0f TFLOP/s (x%d per layer); fastest of 8 "
                "candidates %.3f ms\n", g.name, (long long)L, (long long)g.K, (long long)g.N, (long long)g.K, ms,
                tflops, g.per_layer, tuned_ms);
    comp[std::string("gemm ") + g.name] = {{"ms", ms}, {"tflops", tflops}, {"autotuned_ms", tuned_ms}};
    per_layer_ms += ms * g.per_layer;
  }
  std::printf("  GEMMs alone: %.2f ms per layer, %.1f ms per forward\n", per_layer_ms, per_layer_ms * c.num_layers);
  comp["gemm_ms_per_forward"] = per_layer_ms * c.num_layers;

  // Element-wise: fused gated add + modulated LayerNorm, and q/k RMSNorm + RoPE + v gather.
  VDIT_ASSIGN(DeviceBuffer xs, DeviceBuffer::allocate(static_cast<size_t>(L * D) * 4));  // [L, D] f32
  VDIT_ASSIGN(DeviceBuffer vecs, DeviceBuffer::allocate(static_cast<size_t>(4 * D) * 4));
  VDIT_TRY(ops::cuda::fill_gaussian(xs.data(), false, L * D, 14, 1.f, 0.f, nullptr));
  VDIT_TRY(ops::cuda::fill_gaussian(vecs.data(), false, 4 * D, 15, 0.1f, 0.f, nullptr));
  ops::cuda::AddNormParams n;
  n.x = xs.as<float>(), n.y = y.data(), n.gate = vecs.as<float>(), n.out = x.data(), n.out_bf16 = true;
  n.mul = vecs.as<float>() + D, n.add = vecs.as<float>() + 2 * D, n.rows = L, n.D = D;
  VDIT_ASSIGN(double ln_ms, time_calls([&] { return ops::cuda::add_layer_norm(n, nullptr); }));
  const double ln_gbs = L * D * (4.0 + 2 + 4 + 2) / (ln_ms * 1e-3) / 1e9;
  const auto pairs = model::rope_axis_pairs(c.head_dim());
  const int64_t table = gf * pairs[0] + gh * pairs[1] + gw * pairs[2];
  VDIT_ASSIGN(DeviceBuffer rope, DeviceBuffer::allocate(static_cast<size_t>(2 * table) * 4));
  VDIT_TRY(ops::cuda::fill_gaussian(rope.data(), false, 2 * table, 16, 0.5f, 0.f, nullptr));
  VDIT_ASSIGN(DeviceBuffer qkv_out, DeviceBuffer::allocate(static_cast<size_t>(3 * L * D) * 2));  // q, k, v
  ops::cuda::QkNormParams q;
  for (int i = 0; i < 3; ++i) q.src[i] = static_cast<const uint16_t*>(y.data()) + i * D;
  for (int i = 0; i < 3; ++i) q.dst[i] = static_cast<uint16_t*>(qkv_out.data()) + i * L * D;
  q.weight[0] = vecs.as<float>(), q.weight[1] = vecs.as<float>() + D, q.count = 3;
  q.rows = L, q.D = D, q.src_ld = 3 * D, q.HD = static_cast<int>(c.head_dim());
  q.cos = rope.as<float>(), q.sin = rope.as<float>() + table;
  for (int i = 0; i < 3; ++i) q.pairs[i] = static_cast<int>(pairs[static_cast<size_t>(i)]);
  q.gf = gf, q.gh = gh, q.gw = gw;
  VDIT_ASSIGN(double qk_ms, time_calls([&] { return ops::cuda::qk_norm_rope(q, nullptr); }));
  const double qk_gbs = L * 3.0 * D * 2 * 2 / (qk_ms * 1e-3) / 1e9;
  std::printf("  add + LayerNorm + modulation [%lld, %lld]: %.3f ms (%.0f GB/s, x3 per layer); q/k RMSNorm + RoPE "
              "+ v gather: %.3f ms (%.0f GB/s); element-wise per forward %.1f ms\n",
              (long long)L, (long long)D, ln_ms, ln_gbs, qk_ms, qk_gbs, (3 * ln_ms + qk_ms) * c.num_layers);
  comp["add_layernorm"] = {{"ms", ln_ms}, {"gbs", ln_gbs}};
  {  // cross-attention to the 512 text tokens (cuDNN SDPA with Lk = text_len)
    VDIT_ASSIGN(auto sdpa, attn::CudnnSdpa::create());
    attn::DeviceQKV cq;
    cq.q = x.data(), cq.k = w.data(), cq.v = static_cast<const uint16_t*>(w.data()) + c.text_len * D;
    cq.out = y.data(), cq.L = L, cq.Lk = c.text_len, cq.NH = static_cast<int>(c.num_heads);
    cq.HD = static_cast<int>(c.head_dim());
    VDIT_ASSIGN(double cross_ms, time_calls([&] { return sdpa->forward(cq); }));
    const double tf = 4.0 * L * c.text_len * D / (cross_ms * 1e-3) / 1e12;
    std::printf("  cross-attention [%lld x %lld keys, %lld heads]: %.3f ms (%.0f TFLOP/s), %.1f ms per forward\n",
                (long long)L, (long long)c.text_len, (long long)c.num_heads, cross_ms, tf, cross_ms * c.num_layers);
    comp["cross_attention"] = {{"ms", cross_ms}, {"tflops", tf}};
  }
  comp["qk_norm_rope"] = {{"ms", qk_ms}, {"gbs", qk_gbs}};
  (*j)["components"] = comp;
  return Status::ok();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

size_t used_bytes() {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
  return total_b - free_b;
}

Status run_bench(const BenchStepOptions& o, int* exit_code) {
  using clock = std::chrono::steady_clock;
  VDIT_ASSIGN(model::WanDitConfig cfg, full_config(o.model_config));
  if (o.layers > 0) cfg.num_layers = o.layers;
  VDIT_ASSIGN(Shape latent, latent_shape(o.size, o.frames));
  const int64_t L = latent[1] * (latent[2] / 2) * (latent[3] / 2);
  const double D = static_cast<double>(cfg.dim), Fh = static_cast<double>(cfg.ffn_dim);
  std::printf("bench step: %s (dim %lld, ffn %lld, %lld heads x %lld, %lld layers), %s %lld frames -> latent %s, "
              "%lld tokens, attention %s, timed from step %d of 50, CUDA graphs %s\n",
              o.model_config.c_str(), (long long)cfg.dim, (long long)cfg.ffn_dim, (long long)cfg.num_heads,
              (long long)cfg.head_dim(), (long long)cfg.num_layers, o.size.c_str(), (long long)o.frames,
              shape_str(latent).c_str(), (long long)L, o.attention.c_str(), o.step, o.cuda_graph.c_str());
  nlohmann::json j;
  j["model_config"] = o.model_config, j["size"] = o.size, j["frames"] = o.frames, j["tokens"] = L;
  j["layers"] = cfg.num_layers, j["attention"] = o.attention, j["step"] = o.step;

  if (o.validate) {
    const auto t0 = clock::now();
    VDIT_ASSIGN(double rel, validate(cfg, o));
    const bool ok = rel <= kValidateTol;
    std::printf("validate: cuda vs cpu, same widths, 2 layers, latent [16, 2, 8, 8], 64 text tokens: rel %.3e "
                "(tolerance %.1e) %s [%.1f s]\n",
                rel, kValidateTol, ok ? "ok" : "FAILED", std::chrono::duration<double>(clock::now() - t0).count());
    j["validate_rel"] = rel;
    if (!ok) *exit_code = 1;
  }

  const size_t used0 = used_bytes();
  auto t0 = clock::now();
  VDIT_ASSIGN(std::unique_ptr<model::WanDit> dit, model::make_random_wan_dit_cuda(cfg, o.seed));
  VDIT_TRY(model::set_cuda_dit_graphs(*dit, o.cuda_graph == "on"));
  const double build_s = std::chrono::duration<double>(clock::now() - t0).count();
  VDIT_ASSIGN(Tensor ctx, random_tensor(o.seed + 2, {cfg.text_len, cfg.text_dim}));  // [512, 4096]
  VDIT_ASSIGN(Tensor x, random_tensor(o.seed + 1, latent));
  VDIT_ASSIGN(std::unique_ptr<attn::AttentionMethod> attention, make_method(o.attention, cfg, latent, &o));
  t0 = clock::now();
  VDIT_ASSIGN(auto text, dit->prepare_text(ctx));
  const double text_ms = 1e3 * std::chrono::duration<double>(clock::now() - t0).count();

  Tensor out;
  std::vector<double> times;
  int timed_graphs = 0;  // timed forwards that launched a CUDA graph
  for (int i = 0; i < o.warmup + o.iters; ++i) {
    t0 = clock::now();  // forward() synchronizes its stream before returning, so host time is GPU time
    const int step = std::min(o.step + i, 49);  // a sparse method sees consecutive steps, as in sampling
    VDIT_TRY(dit->forward(&out, x, 999 - 20 * step, *text, *attention, {step, 50, 0}));
    if (i >= o.warmup) {
      times.push_back(1e3 * std::chrono::duration<double>(clock::now() - t0).count());
      VDIT_ASSIGN(model::CudaDitGraphInfo gi, model::cuda_dit_graph_info(*dit));
      timed_graphs += gi.last_used_graph ? 1 : 0;
    }
  }
  VDIT_ASSIGN(const model::CudaDitGraphInfo graphs, model::cuda_dit_graph_info(*dit));
  const size_t used1 = used_bytes();
  const double fwd_ms = median(times);
  double finite = 1;
  for (int64_t i = 0; i < out.numel(); ++i) finite = std::isfinite(out.f32()[i]) ? finite : 0;

  // The instrumented forward also collects each call's density (GPU planners then read theirs back). It runs
  // eagerly: the timing wrapper records events per call, which a graph replay would not repeat.
  attn::StatsCollector stats;
  attention->set_stats_sink(stats.sink());
  TimedAttention timed(*attention);
  t0 = clock::now();
  VDIT_TRY(dit->forward(&out, x, 999 - 20 * o.step, *text, timed, {o.step, 50, 0}));
  const double instr_ms = 1e3 * std::chrono::duration<double>(clock::now() - t0).count();
  attention->set_stats_sink({});
  double density_sum = 0;
  int dense_calls = 0;
  const std::vector<attn::AttentionStats> recs = stats.records();
  for (const auto& r : recs) {
    density_sum += r.dense ? 1.0 : r.density;
    dense_calls += r.dense ? 1 : 0;
  }
  const double mean_density = recs.empty() ? 1.0 : density_sum / static_cast<double>(recs.size());
  VDIT_ASSIGN(double attn_ms, timed.total_ms());
  const double attn_tflops = timed.flops() / (attn_ms * 1e-3) / 1e12;
  const double gemm_flops =
      2.0 * L * cfg.num_layers * (6 * D * D + 2 * D * Fh) + 4.0 * L * cfg.num_layers * cfg.text_len * D;
  const double rest_ms = fwd_ms - attn_ms;
  VDIT_ASSIGN(model::CudaDitMemory mem, model::cuda_dit_memory(*dit));

  std::printf("build: random weights on the GPU %.2f s; prepare_text %.1f ms\n", build_s, text_ms);
  const int digits = fwd_ms < 10 ? 3 : 1;  // sub-millisecond forwards (vdit-tiny) need more than one decimal
  std::printf("forward: median %.*f ms over %d (min %.*f, max %.*f) after %d warm-up; output %s\n", digits, fwd_ms,
              o.iters, digits, *std::min_element(times.begin(), times.end()), digits,
              *std::max_element(times.begin(), times.end()), o.warmup, finite ? "finite" : "HAS NaN/Inf");
  std::printf("step with CFG (2 forwards): %.*f ms; 50 steps: %.*f s\n", digits, 2 * fwd_ms, digits,
              100 * fwd_ms / 1e3);
  if (!graphs.enabled) {
    std::printf("CUDA graphs: off (--cuda-graph off); every forward enqueued kernel by kernel\n");
  } else if (!graphs.failure.empty()) {
    std::printf("CUDA graphs: given up, forwards ran eagerly: %s\n", graphs.failure.c_str());
  } else if (graphs.captures == 0) {
    std::printf("CUDA graphs: none captured (%lld eager forwards): %s\n", (long long)graphs.eager_forwards,
                o.warmup + o.iters < 2 ? "a graph is captured by the second forward"
                                       : "the attention method is not graph-safe (dense is)");
  } else {
    std::printf("CUDA graphs: %d of %d timed forwards launched a graph (%lld captured, %lld launches, %lld eager "
                "warm-up forwards)\n",
                timed_graphs, o.iters, (long long)graphs.captures, (long long)graphs.launches,
                (long long)graphs.eager_forwards);
  }
  std::printf("self-attention: %zu calls, %.1f ms in an instrumented forward of %.1f ms (%.1f%% of the median "
              "forward), %.0f TFLOP/s%s\n",
              timed.calls(), attn_ms, instr_ms, 100 * attn_ms / fwd_ms, attn_tflops,
              recs.empty() ? "" : " dense-equivalent");
  if (!recs.empty()) {
    std::printf("attention density: mean %.3f over %zu calls (%d of them dense: the method's dense layers/steps); "
                "%.0f TFLOP/s on the kept part\n",
                mean_density, recs.size(), dense_calls, attn_tflops * mean_density);
  }
  std::printf("rest (GEMMs, cross-attention, element-wise): %.1f ms, %.0f TFLOP/s of GEMM + cross-attention work\n",
              rest_ms, gemm_flops / (rest_ms * 1e-3) / 1e12);
  std::printf("GPU memory: weights %.2f GiB, activations + workspaces %.2f GiB, text conditioning %.2f GiB; "
              "device use grew by %.2f GiB (cudaMemGetInfo, incl. cuBLASLt/cuDNN)\n",
              mem.weight_bytes / 1073741824.0, mem.arena_bytes / 1073741824.0, mem.text_bytes / 1073741824.0,
              (used1 - used0) / 1073741824.0);
  if (!finite) *exit_code = 1;
  if (o.components) {
    dit.reset();  // room for the scratch buffers
    std::printf("components (timed alone):\n");
    Status st = bench_components(cfg, latent, &j);
    if (!st.is_ok()) std::printf("  components failed: %s\n", st.to_string().c_str());
  }

  j["forward_ms"] = fwd_ms, j["forward_ms_all"] = times, j["step_cfg_ms"] = 2 * fwd_ms;
  j["cuda_graph"] = {{"enabled", graphs.enabled},
                     {"timed_graph_forwards", timed_graphs},
                     {"captures", graphs.captures},
                     {"launches", graphs.launches},
                     {"eager_forwards", graphs.eager_forwards},
                     {"failure", graphs.failure}};
  j["attention_density"] = mean_density, j["attention_dense_calls"] = dense_calls;
  j["attention_ms"] = attn_ms, j["attention_share"] = attn_ms / fwd_ms, j["attention_tflops"] = attn_tflops;
  j["rest_ms"] = rest_ms, j["prepare_text_ms"] = text_ms;
  j["weight_gib"] = mem.weight_bytes / 1073741824.0, j["activation_gib"] = mem.arena_bytes / 1073741824.0;
  j["device_used_gib"] = (used1 - used0) / 1073741824.0;
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << j.dump(2) << "\n";
    if (!f) return io_error("cannot write " + o.json);
  }
  return Status::ok();
}

std::function<int()> setup_bench_step(CLI::App& app) {
  auto o = std::make_shared<BenchStepOptions>();
  app.add_option("--model-config", o->model_config,
                 "wan2.1-1.3b, wan2.1-14b, or vdit-tiny (the built-in model's size: dim 256, 4 layers; use with "
                 "--size 256 --frames 17)")
      ->check(CLI::IsMember({"wan2.1-1.3b", "wan2.1-14b", "vdit-tiny"}));
  app.add_option("--size", o->size, "480p (latent 60x104), 720p (90x160) or 256 (256x256, latent 32x32)")
      ->check(CLI::IsMember({"480p", "720p", "256"}));
  app.add_option("--frames", o->frames, "video frames (4k+1; 81 -> 21 latent frames)");
  app.add_option("--attention", o->attention, "self-attention method (default dense = cuDNN SDPA)");
  app.add_option("--step", o->step,
                 "step index (of 50) of the first timed forward; later ones follow it (default 25, past the "
                 "dense warm-up steps of every method's preset; 0 times the warm-up)")
      ->check(CLI::Range(0, 49));
  app.add_option("--attention-config", o->attention_config, "method settings: JSON text or a JSON file");
  app.add_option("--paro-density", o->paro_density,
                 "PARO without a plan in --attention-config: kept block fraction of the synthetic plan (default 0.3)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--paro-block", o->paro_block, "PARO synthetic plan block size, 64 or 128 (default 128)")
      ->check(CLI::IsMember({64, 128}));
  app.add_option("--iters", o->iters, "timed forwards (median reported, default 5)")->check(CLI::Range(1, 1000));
  app.add_option("--warmup", o->warmup, "untimed forwards first (default 2)")->check(CLI::Range(0, 100));
  app.add_option("--layers", o->layers, "override the number of layers (quick runs)")->check(CLI::Range(1, 1000));
  app.add_option("--seed", o->seed, "seed of the random weights and inputs");
  app.add_flag("!--no-validate", o->validate, "skip the CPU cross-check on the reduced model");
  app.add_flag("!--no-components", o->components, "skip timing the GEMM shapes and element-wise kernels alone");
  app.add_option("--cuda-graph", o->cuda_graph,
                 "on (default): run each forward's device work as a CUDA graph where the attention allows it (dense), "
                 "after one eager warm-up forward and one capture; off: enqueue kernel by kernel")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--json", o->json, "also write the results as JSON");
  return [o] {
    int code = 0;
    Status st = run_bench(*o, &code);
    if (!st.is_ok()) return report_error(st.message());
    return code;
  };
}

}  // namespace

VDIT_REGISTER_COMMAND("bench step", "Time the Wan2.1 DiT forward on the GPU at full or tiny size (random weights)", 61,
                      setup_bench_step);

}  // namespace vdit::cli
