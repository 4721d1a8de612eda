// CUDA graphs of the CUDA DiT forward (dit/model/dit_graph_cache.h) on a small random model (the built-in
// vdit-tiny widths with 2 layers): graph forwards against eager ones for CFG-alternating text conditionings and
// changing timesteps, the warm-up / capture / launch counts, a stage recorder and attention that is not
// graph-safe (a wrapper, a sparse method) running eagerly, a new attention object and a change of latent shape.
//
// Tolerance: a graph replays the very kernels of the eager forward with the same arguments, so it must be as
// exact as repeating the eager forward: kGraphTol = 0 (bitwise) when two eager forwards are bitwise equal
// (cuBLASLt with a fixed algorithm and cuDNN's SDPA forward are deterministic), else kNondeterministicTol =
// 1e-6 relative (max|Δ| / max|ref|), the bound the brief allows; the eager repeat's own difference is printed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "attention/methods/method.h"
#include "dit/core/rng.h"
#include "dit/model/wan_dit.h"
#include "dit/model/wan_dit_cpu.h"
#include "dit/model/wan_dit_cuda.h"
#include "tests/harness/test_util.h"

using namespace vdit;

namespace {

constexpr double kNondeterministicTol = 1e-6;

model::WanDitConfig tiny_config() {  // samples/models/vdit-tiny-t2v's metadata, 2 of its 4 layers
  model::WanDitConfig c;
  c.dim = 256, c.ffn_dim = 1024, c.num_heads = 4, c.num_layers = 2;
  c.freq_dim = 256, c.text_dim = 128, c.text_len = 32, c.in_dim = 16, c.out_dim = 16;
  return c;
}

std::unique_ptr<model::WanDit> tiny_model() {
  auto dit = model::make_random_wan_dit_cuda(tiny_config(), 11);
  EXPECT_TRUE(dit) << dit.status().to_string();
  return dit ? std::move(*dit) : nullptr;
}

std::unique_ptr<attn::AttentionMethod> method(const std::string& name, const Shape& latent, int num_steps = 1) {
  const model::WanDitConfig c = tiny_config();
  attn::ModelInfo info;
  info.num_layers = static_cast<int>(c.num_layers);
  info.num_heads = static_cast<int>(c.num_heads);
  info.head_dim = static_cast<int>(c.head_dim());
  info.grid = {latent[1], latent[2] / 2, latent[3] / 2};
  info.num_steps = num_steps;
  auto a = attn::make_attention(name, nullptr, info);
  EXPECT_TRUE(a) << a.status().to_string();
  return a ? std::move(*a) : nullptr;
}

Tensor noise(uint64_t seed, const Shape& shape) {
  auto t = gaussian_noise(seed, shape);
  EXPECT_TRUE(t) << t.status().to_string();
  return t ? *t : Tensor();
}

std::shared_ptr<const model::TextConditioning> prepare(const model::WanDit& dit, uint64_t seed, int64_t tokens) {
  auto t = dit.prepare_text(noise(seed, {tokens, tiny_config().text_dim}));
  EXPECT_TRUE(t) << t.status().to_string();
  return t ? *t : nullptr;
}

Tensor forward(const model::WanDit& dit, const Tensor& x, int64_t t, const model::TextConditioning& text,
               attn::SelfAttention& attention, model::DitStep step = {},
               const model::StageRecorder* rec = nullptr) {
  Tensor out;
  const Status st = dit.forward(&out, x, t, text, attention, step, rec);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return out;
}

model::CudaDitGraphInfo info(const model::WanDit& dit) {
  auto i = model::cuda_dit_graph_info(dit);
  EXPECT_TRUE(i) << i.status().to_string();
  return i ? *i : model::CudaDitGraphInfo();
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.defined() && b.defined() && a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// The tolerance of graph vs eager: 0 if two eager forwards of `dit` agree bitwise, else kNondeterministicTol.
double graph_tolerance(const model::WanDit& dit, const Tensor& x, const model::TextConditioning& text,
                       attn::SelfAttention& attention) {
  const Tensor a = forward(dit, x, 999, text, attention), b = forward(dit, x, 999, text, attention);
  const bool same = bitwise_equal(a, b);
  const double rel = a.defined() && b.defined() ? test::compare(a.f32(), b.f32(), a.numel()).rel() : INFINITY;
  std::printf("  eager forward repeated: %s (rel %.3e); graph vs eager tolerance %s\n",
              same ? "bitwise equal" : "differs", rel, same ? "bitwise" : "1e-6");
  return same ? 0.0 : kNondeterministicTol;
}

void expect_match(const Tensor& got, const Tensor& eager, double tol, const std::string& what) {
  ASSERT_TRUE(got.defined() && eager.defined()) << what;
  if (tol == 0.0) {
    const test::Diff d = test::compare(got.f32(), eager.f32(), got.numel());
    EXPECT_TRUE(bitwise_equal(got, eager)) << what << ": not bitwise equal to the eager forward, rel " << d.rel()
                                           << " worst index " << d.worst;
  } else {
    test::expect_close(got, eager, tol, what);
  }
}

// Forwards to dense but keeps SelfAttention's default device_graph_safe() = false (as any wrapper does).
class WrappedAttention : public attn::SelfAttention {
 public:
  explicit WrappedAttention(attn::SelfAttention& inner) : inner_(inner) {}
  Status forward(const attn::AttentionCall& call, const float* q, const float* k, const float* v, int64_t L, int NH,
                 int HD, float* out) override {
    return inner_.forward(call, q, k, v, L, NH, HD, out);
  }
  Status forward_device(const attn::AttentionCall& call, const attn::DeviceQKV& qkv) override {
    return inner_.forward_device(call, qkv);
  }
  const char* name() const override { return "wrapped dense"; }

 private:
  attn::SelfAttention& inner_;
};

const Shape kLatent{16, 3, 16, 16};  // grid 3x8x8, 192 tokens

}  // namespace

// Two steps of CFG and a third (cond/uncond alternate, the timestep changes every step): 1 eager warm-up per key,
// then a capture per key, then launches; every output as the eager forward's.
TEST(CudaDitGraph, CfgForwardsMatchEagerAndCountWarmupCaptureLaunch) {
  auto dit = tiny_model();
  auto dense = method("dense", kLatent);
  ASSERT_TRUE(dit && dense);
  const Tensor x = noise(1, kLatent);
  auto cond = prepare(*dit, 2, 20), uncond = prepare(*dit, 3, 5);
  ASSERT_TRUE(cond && uncond);
  const int64_t timesteps[3] = {999, 750, 500};

  ASSERT_TRUE(model::set_cuda_dit_graphs(*dit, false).is_ok());
  std::vector<Tensor> eager;
  for (int i = 0; i < 6; ++i) {
    eager.push_back(forward(*dit, x, timesteps[i / 2], i % 2 ? *uncond : *cond, *dense, {i / 2, 3, i % 2}));
  }
  const double tol = graph_tolerance(*dit, x, *cond, *dense);
  model::CudaDitGraphInfo before = info(*dit);
  EXPECT_FALSE(before.enabled);
  EXPECT_FALSE(before.last_used_graph);
  EXPECT_EQ(before.eager_forwards, 8);
  EXPECT_EQ(before.captures, 0);
  EXPECT_EQ(before.launches, 0);

  ASSERT_TRUE(model::set_cuda_dit_graphs(*dit, true).is_ok());
  for (int i = 0; i < 6; ++i) {
    const Tensor out = forward(*dit, x, timesteps[i / 2], i % 2 ? *uncond : *cond, *dense, {i / 2, 3, i % 2});
    const model::CudaDitGraphInfo now = info(*dit);
    const std::string what = strfmt("forward %d (step %d, %s)", i, i / 2, i % 2 ? "uncond" : "cond");
    std::printf("  %s: %s; eager %lld, captures %lld, launches %lld\n", what.c_str(),
                now.last_used_graph ? "graph" : "eager", (long long)now.eager_forwards, (long long)now.captures,
                (long long)now.launches);
    EXPECT_TRUE(now.enabled);
    EXPECT_EQ(now.last_used_graph, i >= 2) << what;
    EXPECT_EQ(now.eager_forwards, before.eager_forwards + std::min(i + 1, 2)) << what;
    EXPECT_EQ(now.captures, std::min(std::max(i - 1, 0), 2)) << what;
    EXPECT_EQ(now.launches, std::max(i - 1, 0)) << what;
    EXPECT_TRUE(now.failure.empty()) << now.failure;
    expect_match(out, eager[static_cast<size_t>(i)], tol, what);
  }
  EXPECT_EQ(info(*dit).cached_graphs, 2);

  // Off frees the graphs and runs eagerly again.
  ASSERT_TRUE(model::set_cuda_dit_graphs(*dit, false).is_ok());
  EXPECT_EQ(info(*dit).cached_graphs, 0);
  const Tensor off = forward(*dit, x, timesteps[0], *cond, *dense, {0, 3, 0});
  EXPECT_FALSE(info(*dit).last_used_graph);
  expect_match(off, eager[0], tol, "graphs off again");
}

// A stage recorder runs eagerly (it synchronizes per stage) and an empty one does not count; a wrapper that does
// not declare itself graph-safe, and a new dense object, get no graph until warmed.
TEST(CudaDitGraph, RecorderWrapperAndNewAttentionObject) {
  auto dit = tiny_model();
  auto dense = method("dense", kLatent);
  ASSERT_TRUE(dit && dense);
  const Tensor x = noise(4, kLatent);
  auto cond = prepare(*dit, 5, 32);
  ASSERT_TRUE(cond);
  ASSERT_TRUE(model::set_cuda_dit_graphs(*dit, false).is_ok());
  const Tensor eager = forward(*dit, x, 600, *cond, *dense);
  const double tol = graph_tolerance(*dit, x, *cond, *dense);
  ASSERT_TRUE(model::set_cuda_dit_graphs(*dit, true).is_ok());
  forward(*dit, x, 600, *cond, *dense);  // warm-up
  expect_match(forward(*dit, x, 600, *cond, *dense), eager, tol, "captured");
  ASSERT_TRUE(info(*dit).last_used_graph);
  const int64_t captures = info(*dit).captures;

  int stages = 0;
  model::StageRecorder rec = [&](const std::string&, const Tensor&) { ++stages; };
  expect_match(forward(*dit, x, 600, *cond, *dense, {}, &rec), eager, tol, "with a recorder");
  EXPECT_FALSE(info(*dit).last_used_graph);
  EXPECT_GT(stages, 10);
  model::StageRecorder empty;
  expect_match(forward(*dit, x, 600, *cond, *dense, {}, &empty), eager, tol, "with an empty recorder");
  EXPECT_TRUE(info(*dit).last_used_graph);

  WrappedAttention wrapped(*dense);
  for (int i = 0; i < 3; ++i) {
    expect_match(forward(*dit, x, 600, *cond, wrapped), eager, tol, strfmt("wrapped attention, forward %d", i));
    EXPECT_FALSE(info(*dit).last_used_graph);
  }
  EXPECT_EQ(info(*dit).captures, captures);

  // Another dense object (its own cuDNN plans and workspace): a new key, warmed before it is captured. Its
  // cuDNN plans are timed anew and may pick another engine: compare with its own eager warm-up forward.
  auto dense2 = method("dense", kLatent);
  ASSERT_TRUE(dense2);
  EXPECT_NE(dense2->device_graph_epoch(), dense->device_graph_epoch());
  const Tensor eager2 = forward(*dit, x, 600, *cond, *dense2);
  EXPECT_FALSE(info(*dit).last_used_graph);
  for (int i = 0; i < 2; ++i) {
    expect_match(forward(*dit, x, 600, *cond, *dense2), eager2, tol, strfmt("second dense object, forward %d", i));
    EXPECT_TRUE(info(*dit).last_used_graph) << i;
  }
  EXPECT_EQ(info(*dit).captures, captures + 1);
  EXPECT_TRUE(info(*dit).failure.empty()) << info(*dit).failure;
}

// A new latent shape reallocates the arena: its graphs are dropped, the new shape warms up and is captured, and
// going back re-captures; results stay those of the eager forwards.
TEST(CudaDitGraph, LatentShapeChangeRecaptures) {
  auto dit = tiny_model();
  auto dense = method("dense", kLatent);
  ASSERT_TRUE(dit && dense);
  const Shape other{16, 4, 16, 24};  // grid 4x8x12, 384 tokens: new GEMM and attention plans
  const Tensor xa = noise(6, kLatent), xb = noise(7, other);
  auto cond = prepare(*dit, 8, 12);
  ASSERT_TRUE(cond);
  ASSERT_TRUE(model::set_cuda_dit_graphs(*dit, false).is_ok());
  const Tensor ea = forward(*dit, xa, 800, *cond, *dense), eb = forward(*dit, xb, 800, *cond, *dense);
  const double tol = std::max(graph_tolerance(*dit, xa, *cond, *dense), graph_tolerance(*dit, xb, *cond, *dense));
  ASSERT_TRUE(model::set_cuda_dit_graphs(*dit, true).is_ok());

  auto run3 = [&](const Tensor& x, const Tensor& ref, const char* name) {
    const int64_t captures = info(*dit).captures;
    for (int i = 0; i < 3; ++i) {
      expect_match(forward(*dit, x, 800, *cond, *dense), ref, tol, strfmt("%s, forward %d", name, i));
      EXPECT_EQ(info(*dit).last_used_graph, i >= 1) << name << " forward " << i;
    }
    EXPECT_EQ(info(*dit).captures, captures + 1) << name;
    EXPECT_EQ(info(*dit).cached_graphs, 1) << name;  // the other shape's graph went with its arena
  };
  run3(xa, ea, "latent [16, 3, 16, 16]");
  run3(xb, eb, "latent [16, 4, 16, 24]");
  run3(xa, ea, "back to [16, 3, 16, 16]");
  EXPECT_TRUE(info(*dit).failure.empty()) << info(*dit).failure;
}

// Sparse methods plan on the host or synchronize: never graph-safe, so their forwards stay eager (dense warm-up
// step and sparse step alike). The built-in model's latent, where their GPU paths are exercised end to end.
TEST(CudaDitGraph, SparseMethodGetsNoGraph) {
  auto dit = tiny_model();
  ASSERT_TRUE(dit);
  const Shape latent{16, 5, 32, 32};  // grid 5x16x16, 1280 tokens
  auto radial = method("radial", latent, 4);
  ASSERT_TRUE(radial);
  attn::AttentionCall call;
  call.num_layers = 2, call.num_steps = 4, call.grid = {5, 16, 16};
  EXPECT_FALSE(radial->device_graph_safe(call));
  const Tensor x = noise(9, latent);
  auto cond = prepare(*dit, 10, 16);
  ASSERT_TRUE(cond);
  const int64_t captures = info(*dit).captures;
  for (int step : {0, 0, 2, 2, 3}) {
    const Tensor out = forward(*dit, x, 999 - 200 * step, *cond, *radial, {step, 4, 0});
    EXPECT_TRUE(out.defined()) << "step " << step;
    EXPECT_FALSE(info(*dit).last_used_graph) << "step " << step;
  }
  EXPECT_EQ(info(*dit).captures, captures);
}

// The switch and the query need a CUDA DiT.
TEST(CudaDitGraph, OtherModelsAreRefused) {
  auto gpu = tiny_model();
  ASSERT_TRUE(gpu);
  auto weights = model::download_wan_dit_cuda_weights(*gpu);
  ASSERT_TRUE(weights) << weights.status().to_string();
  std::unique_ptr<model::WanDit> cpu = model::make_wan_dit_cpu(nullptr, tiny_config(), std::move(*weights));
  ASSERT_TRUE(cpu);
  EXPECT_EQ(model::set_cuda_dit_graphs(*cpu, true).code(), StatusCode::invalid_argument);
  EXPECT_EQ(model::cuda_dit_graph_info(*cpu).status().code(), StatusCode::invalid_argument);
}
