// The CPU Wan2.1 DiT against the official-code goldens (tests/data/wan_tiny/dit_tiny_golden.safetensors,
// made on the H200 with Wan2.1's model.py in fp32, TF32 off): every recorded stage of the cond and uncond
// forwards, the CFG result, the float64 sinusoid and RoPE table, and the AttentionCall plumbing.
//
// Tolerances (max|Δ| / max|ref|, one bad element fails):
//   kStageTol = 1e-5     fp32 math against an fp32 golden. The golden's own CPU-vs-GPU fp32 spread is
//                        7.6e-7 (wan.md §7.5); GEMM and attention summation orders differ from PyTorch's,
//                        so ~1e-6 is expected; a real mistake (wrong gate, norm, RoPE pair) gives > 1e-2.
//   kCrossAttnGoldenTol = 2e-5  the four *_cross_attn_out stages only. There the fp32 golden itself is off
//                        the exact (float64) value by up to 1.13e-5 (tests/model/make_f64_reference.py
//                        prints it; every other stage of the golden is within 1.2e-6 of float64), so no
//                        fp32 implementation can be held to 1e-5 against it. Ours is checked instead
//                        against the float64 evaluation with kF64Tol.
//   kF64Tol = 2e-6       ours vs the float64 evaluation (dit_tiny_f64_reference.safetensors); measured 7.9e-7
//                        (cross-attention) and the 4-head (head_dim 64) output.
//   kTableTol = 1e-12    the sinusoid and RoPE tables are computed in float64 exactly as the reference does.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "attention/attention.h"
#include "dit/model/wan_dit.h"
#include "dit/model/wan_embed.h"
#include "io/safetensors_writer.h"
#include "io/tensor_file.h"
#include "tests/harness/test_util.h"

using namespace vdit;

namespace {

constexpr double kStageTol = 1e-5;
constexpr double kCrossAttnGoldenTol = 2e-5;
constexpr double kF64Tol = 2e-6;
constexpr double kTableTol = 1e-12;

double golden_tolerance(const std::string& stage) {
  return stage.find("cross_attn_out") != std::string::npos ? kCrossAttnGoldenTol : kStageTol;
}

std::unique_ptr<TensorFile> open_golden() {
  auto f = open_tensor_file(test::data_path("wan_tiny/dit_tiny_golden.safetensors"));
  EXPECT_TRUE(f) << f.status().to_string();
  return f ? std::move(*f) : nullptr;
}

std::unique_ptr<model::WanDit> load_tiny() {
  auto dit = model::load_wan_dit(test::data_path("wan_tiny/dit_tiny_weights.safetensors"));
  EXPECT_TRUE(dit) << dit.status().to_string();
  return dit ? std::move(*dit) : nullptr;
}

Tensor golden(const TensorFile& g, const std::string& name) {
  auto t = g.tensor_f32(name);
  EXPECT_TRUE(t) << name << ": " << t.status().to_string();
  return t ? *t : Tensor();
}

int64_t golden_timestep(const TensorFile& g) {
  auto t = g.tensor("in.t");
  EXPECT_TRUE(t);
  return t->data<int64_t>()[0];
}

// The golden layout of a stage, turned into ours: [1, D, f, h, w] channel-first -> [L, D]; leading 1 dropped.
Tensor to_our_layout(const std::string& stage, const Tensor& ref) {
  if (stage == "patch_embedding_out") {
    const int64_t D = ref.dim(1), L = ref.numel() / D;
    auto t = Tensor::create(DType::f32, {L, D});
    for (int64_t d = 0; d < D; ++d)
      for (int64_t l = 0; l < L; ++l) t->f32()[l * D + d] = ref.f32()[d * L + l];
    return *t;
  }
  if (ref.rank() >= 2 && ref.dim(0) == 1) {
    Shape s(ref.shape().begin() + 1, ref.shape().end());
    return *ref.reshape(s);
  }
  return ref;
}

// Records every stage and every attention call.
struct Recording {
  std::map<std::string, Tensor> stages;
  model::StageRecorder recorder() {
    return [this](const std::string& name, const Tensor& t) { stages[name] = t; };
  }
};

// Dense attention that remembers the AttentionCall of each layer.
class SpyAttention : public attn::SelfAttention {
 public:
  Status forward(const attn::AttentionCall& call, const float* q, const float* k, const float* v, int64_t L, int NH,
                 int HD, float* out) override {
    calls.push_back(call);
    lengths.push_back(L);
    return dense->forward(call, q, k, v, L, NH, HD, out);
  }
  const char* name() const override { return "spy"; }
  std::unique_ptr<attn::SelfAttention> dense = attn::make_dense_cpu_attention();
  std::vector<attn::AttentionCall> calls;
  std::vector<int64_t> lengths;
};

Tensor run_branch(const model::WanDit& dit, const TensorFile& g, const std::string& branch, Recording* rec,
                  SpyAttention* spy, int branch_index) {
  model::StageRecorder r = rec->recorder();
  auto text = dit.prepare_text(golden(g, "in.context_" + branch), &r);
  EXPECT_TRUE(text) << text.status().to_string();
  Tensor out;
  Status st = dit.forward(&out, golden(g, "in.x"), golden_timestep(g), **text, *spy, {3, 50, branch_index}, &r);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return out;
}

}  // namespace

TEST(WanGolden, EveryStageMatchesCondAndUncond) {
  auto g = open_golden();
  auto dit = load_tiny();
  ASSERT_TRUE(g && dit);
  int branch_index = 0;
  for (const std::string branch : {"cond", "uncond"}) {
    Recording rec;
    SpyAttention spy;
    run_branch(*dit, *g, branch, &rec, &spy, branch_index++);
    // Every recorded golden stage of this branch (except the bf16 autocast runs) must be compared.
    int compared = 0;
    for (const TensorEntry& e : g->entries()) {
      const std::string prefix = branch + ".";
      if (e.name.rfind(prefix, 0) != 0 || e.name.find("autocast") != std::string::npos) continue;
      const std::string stage = e.name.substr(prefix.size());
      auto it = rec.stages.find(stage);
      ASSERT_NE(it, rec.stages.end()) << "stage " << stage << " was not recorded by the model";
      test::expect_close(it->second, to_our_layout(stage, golden(*g, e.name)), golden_tolerance(stage), e.name);
      ++compared;
    }
    // 4 embeddings, block0 in/q/norm_q/norm3, 2 x (self, cross, ffn, out), head, out.
    EXPECT_EQ(compared, 18) << branch;
  }
}

TEST(WanGolden, CrossAttentionMatchesFloat64Evaluation) {
  auto g = open_golden();
  auto dit = load_tiny();
  auto f64 = open_tensor_file(test::data_path("wan_tiny/dit_tiny_f64_reference.safetensors"));
  ASSERT_TRUE(g && dit && f64) << f64.status().to_string();
  int branch_index = 0;
  int compared = 0;
  for (const std::string branch : {"cond", "uncond"}) {
    Recording rec;
    SpyAttention spy;
    run_branch(*dit, *g, branch, &rec, &spy, branch_index++);
    for (int i = 0; i < 2; ++i) {
      const std::string stage = "block" + std::to_string(i) + "_cross_attn_out";
      test::expect_close(rec.stages.at(stage), golden(**f64, branch + "." + stage), kF64Tol,
                         branch + "." + stage + " vs f64");
      ++compared;
    }
  }
  EXPECT_EQ(compared, 4);
}

TEST(WanGolden, HeadDim64MatchesFloat64Evaluation) {
  // The same weights with 4 heads of 64 (RoPE pairs 12/10/10): a file without config metadata, num_heads
  // inferred from the head_dim given at load.
  auto g = open_golden();
  auto src = open_tensor_file(test::data_path("wan_tiny/dit_tiny_weights.safetensors"));
  auto f64 = open_tensor_file(test::data_path("wan_tiny/dit_tiny_f64_reference.safetensors"));
  ASSERT_TRUE(g && src && f64);
  NamedTensors ts;
  for (const TensorEntry& e : (*src)->entries()) ts.emplace_back(e.name, *(*src)->tensor(e.name));
  const auto dir = std::filesystem::path(VDIT_BINARY_DIR) / "test_tmp_model_hd64";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "no_metadata.safetensors").string();
  ASSERT_TRUE(save_safetensors(path, ts).is_ok());
  model::WanDitLoadOptions opt;
  opt.head_dim = 64;
  model::WanDitSource source;
  auto dit = model::load_wan_dit(path, opt, &source);
  ASSERT_TRUE(dit) << dit.status().to_string();
  EXPECT_EQ(source.config_from, "tensor shapes");
  EXPECT_EQ((*dit)->config().num_heads, 4);
  EXPECT_EQ(model::rope_axis_pairs(64), (std::array<int64_t, 3>{12, 10, 10}));
  auto text = (*dit)->prepare_text(golden(*g, "in.context_cond"));
  ASSERT_TRUE(text);
  auto attention = attn::make_dense_cpu_attention();
  Tensor out;
  ASSERT_TRUE((*dit)->forward(&out, golden(*g, "in.x"), golden_timestep(*g), **text, *attention).is_ok());
  test::expect_close(out, golden(**f64, "heads4.cond.out"), kF64Tol, "4 heads of 64 vs f64");
  // Not the 2-head result: the head split matters.
  EXPECT_GT(test::compare(out.f32(), golden(*g, "cond.out").f32(), out.numel()).rel(), 1e-3);
}

TEST(WanGolden, ClassifierFreeGuidance) {
  auto g = open_golden();
  auto dit = load_tiny();
  ASSERT_TRUE(g && dit);
  Recording rc, ru;
  SpyAttention sc, su;
  Tensor cond = run_branch(*dit, *g, "cond", &rc, &sc, 0);
  Tensor uncond = run_branch(*dit, *g, "uncond", &ru, &su, 1);
  Tensor v;
  ASSERT_TRUE(model::classifier_free_guidance(&v, cond, uncond, 5.0).is_ok());
  test::expect_close(v, golden(*g, "cfg5.noise_pred"), kStageTol, "cfg5.noise_pred");
  // In place over the cond tensor gives the same values.
  ASSERT_TRUE(model::classifier_free_guidance(&cond, cond, uncond, 5.0).is_ok());
  test::expect_close(cond, v, 0.0, "cfg in place");
  Tensor wrong = *Tensor::zeros(DType::f32, {16, 3, 8, 11});
  Status st = model::classifier_free_guidance(&v, cond, wrong, 5.0);
  EXPECT_EQ(st.code(), StatusCode::invalid_argument);
}

TEST(WanGolden, AttentionCallsCarryLayerStepBranchAndGrid) {
  auto g = open_golden();
  auto dit = load_tiny();
  ASSERT_TRUE(g && dit);
  Recording rec;
  SpyAttention spy;
  run_branch(*dit, *g, "uncond", &rec, &spy, 1);
  ASSERT_EQ(spy.calls.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const auto& c = spy.calls[static_cast<size_t>(i)];
    EXPECT_EQ(c.layer, i);
    EXPECT_EQ(c.num_layers, 2);
    EXPECT_EQ(c.step, 3);
    EXPECT_EQ(c.num_steps, 50);
    EXPECT_EQ(c.branch, 1);
    EXPECT_EQ(c.grid.f, 3);
    EXPECT_EQ(c.grid.h, 4);
    EXPECT_EQ(c.grid.w, 6);
    EXPECT_EQ(c.text_len, 0);
    EXPECT_EQ(spy.lengths[static_cast<size_t>(i)], 72);
  }
}

TEST(WanGolden, SinusoidAndRopeTablesMatchFloat64Reference) {
  auto g = open_golden();
  ASSERT_TRUE(g);
  Tensor ref = golden(*g, "const.sinusoid_t937_f64");  // [1, 256]
  auto ref64 = g->tensor("const.sinusoid_t937_f64");
  ASSERT_EQ(ref64->dtype(), DType::f64);
  std::vector<double> s = model::timestep_sinusoid(256, 937.0);
  ASSERT_EQ(static_cast<int64_t>(s.size()), ref64->numel());
  double worst = 0;
  for (size_t i = 0; i < s.size(); ++i) worst = std::max(worst, std::fabs(s[i] - ref64->data<double>()[i]));
  EXPECT_LE(worst, kTableTol) << "sinusoid";

  auto re = g->tensor("const.rope_freqs_real_f64");  // [1024, 64]
  auto im = g->tensor("const.rope_freqs_imag_f64");
  ASSERT_TRUE(re && im);
  EXPECT_EQ(shape_str(re->shape()), "[1024, 64]");
  EXPECT_EQ(model::rope_axis_pairs(128), (std::array<int64_t, 3>{22, 21, 21}));
  std::vector<double> angles = model::rope_angle_table(128, 1024);
  double worst_re = 0, worst_im = 0;
  int64_t worst_at = -1;
  for (int64_t i = 0; i < re->numel(); ++i) {
    const double dr = std::fabs(std::cos(angles[static_cast<size_t>(i)]) - re->data<double>()[i]);
    const double di = std::fabs(std::sin(angles[static_cast<size_t>(i)]) - im->data<double>()[i]);
    if (std::max(dr, di) > std::max(worst_re, worst_im)) worst_at = i;
    worst_re = std::max(worst_re, dr);
    worst_im = std::max(worst_im, di);
  }
  EXPECT_LE(worst_re, kTableTol) << "rope real, worst index " << worst_at;
  EXPECT_LE(worst_im, kTableTol) << "rope imag, worst index " << worst_at;
}

TEST(WanGolden, SecondForwardWithSameConditioningIsIdentical) {
  // The text conditioning is reused across steps: a second forward must not depend on the first.
  auto g = open_golden();
  auto dit = load_tiny();
  ASSERT_TRUE(g && dit);
  auto text = dit->prepare_text(golden(*g, "in.context_cond"));
  ASSERT_TRUE(text);
  auto attention = attn::make_dense_cpu_attention();
  Tensor a, b, other;
  ASSERT_TRUE(dit->forward(&a, golden(*g, "in.x"), golden_timestep(*g), **text, *attention).is_ok());
  ASSERT_TRUE(dit->forward(&other, golden(*g, "in.x"), 500, **text, *attention).is_ok());
  ASSERT_TRUE(dit->forward(&b, golden(*g, "in.x"), golden_timestep(*g), **text, *attention).is_ok());
  test::expect_close(b, a, 0.0, "repeat forward");
  test::expect_close(a, golden(*g, "cond.out"), kStageTol, "cond.out");
  // A different timestep changes the output (the test above would pass for a model that ignores t).
  test::Diff d = test::compare(other.f32(), a.f32(), a.numel());
  EXPECT_GT(d.rel(), 1e-3) << "t=500 and t=937 gave the same output";
}
