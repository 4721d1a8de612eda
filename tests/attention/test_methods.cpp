// Planners and the method base through the library API: Radial at resolutions the reference cannot handle
// (checked against a brute-force token-canvas evaluation of the same rule), the common schedule, Re-ttention
// state (caching, λ steps, ρ clamp, per-branch state), the per-frame band predicate, statistics and
// configuration errors.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "attention/block_sparse_cpu.h"
#include "attention/dense_cpu.h"
#include "attention/methods/method.h"
#include "attention/radial_mask.h"
#include "tests/attention/tolerances.h"
#include "tests/harness/test_util.h"

namespace vdit::attn {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float sd = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, sd);
  std::vector<float> x(n);
  for (auto& e : x) e = nd(rng);
  return x;
}

int bitlen(int64_t x) {
  int n = 0;
  for (; x > 0; x >>= 1) ++n;
  return n;
}

// The Radial rule evaluated literally: per tile an s x s token mask, placed whole at (i*s, j*s) on an
// L x L canvas split into blocks; per block the strict 60%/one-third test on that tile alone; OR over tiles.
std::vector<uint8_t> radial_brute_force(const RadialMaskParams& p) {
  const int64_t F = p.frames, s = p.frame_tokens, L = p.seq_len(), B = p.block, nB = (L + B - 1) / B;
  const double P = std::ldexp(1.0, bitlen(s));
  std::vector<uint8_t> mask(static_cast<size_t>(nB * nB), 0);
  for (int64_t i = 0; i < F; ++i) {
    for (int64_t j = 0; j < F; ++j) {
      const int64_t d = std::llabs(i - j);
      int64_t w = s;
      if (!(p.sink && j == 0) && d >= 1) {
        if (d == 1) {
          w = p.legacy_04560d1 ? s / 2 : s;
        } else {
          const double L0 = P / std::ldexp(1.0, bitlen(d));
          if (L0 < B && d % static_cast<int64_t>(B / L0) != 0) continue;
          const double Lg = L0 * p.decay;
          w = Lg >= B ? static_cast<int64_t>(std::floor(Lg)) : B;
        }
      }
      // counts[qb][kb][col] = on rows of that tile in the block column
      std::vector<std::vector<int>> count(static_cast<size_t>(nB * nB), std::vector<int>(static_cast<size_t>(B), 0));
      for (int64_t k = 0; k < s; ++k) {
        for (int64_t l = 0; l < s; ++l) {
          if (std::llabs(k - l) > w) continue;
          const int64_t r = i * s + k, c = j * s + l;
          count[static_cast<size_t>((r / B) * nB + c / B)][static_cast<size_t>(c % B)]++;
        }
      }
      for (int64_t qb = 0; qb < nB; ++qb) {
        const int64_t rows = std::min(B, L - qb * B);
        for (int64_t kb = 0; kb < nB; ++kb) {
          int nz = 0, hi = 0;
          for (int c : count[static_cast<size_t>(qb * nB + kb)]) {
            nz += c > 0;
            hi += 3 * c > rows;
          }
          if (nz > 0 && 5 * hi > 3 * nz) mask[static_cast<size_t>(qb * nB + kb)] = 1;
        }
      }
    }
  }
  for (int64_t b = 0; b < nB; ++b) mask[static_cast<size_t>(b * nB + b)] = 1;
  return mask;
}

TEST(RadialMask, UnalignedFramesAndTailsMatchBruteForce) {
  // Frames of 200 / 150 tokens: not block-aligned, L not a block multiple (the reference truncates or refuses).
  for (int block : {64, 128}) {
    for (auto [F, s, decay] : {std::tuple<int64_t, int64_t, double>{6, 200, 0.3}, {9, 150, 1.0}, {5, 320, 0.7}}) {
      RadialMaskParams p;
      p.frames = F;
      p.frame_tokens = s;
      p.block = block;
      p.decay = decay;
      auto m = radial_block_mask(p);
      ASSERT_TRUE(m.is_ok()) << m.status().to_string();
      EXPECT_EQ(*m, radial_brute_force(p)) << "radial(F=" << F << ", s=" << s << ", block=" << block
                                           << ", decay=" << decay << ")";
    }
  }
}

TEST(RadialMask, Wan480pAnd720pShapesPlan) {
  // Wan 480p: 21 x 30 x 52 = 32,760 tokens (the reference raises on it); 720p: 21 x 45 x 80 = 75,600.
  for (auto [h, w] : {std::pair<int64_t, int64_t>{30, 52}, {45, 80}}) {
    auto m = make_attention("radial", {{"dense_steps", 0}, {"dense_layers", 0}}, ModelInfo{});
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    AttentionCall call;
    call.grid = {21, h, w};
    QKV in;
    in.L = call.grid.tokens();
    in.NH = 12;
    in.HD = 128;
    auto lay = (*m)->plan_only(call, in);
    ASSERT_TRUE(lay.is_ok()) << lay.status().to_string();
    ASSERT_TRUE(*lay);
    EXPECT_TRUE((*lay)->validate().is_ok());
    const double dens = (*lay)->block_density();
    EXPECT_GT(dens, 0.1);
    EXPECT_LT(dens, 0.6);
    // Every block whose rows lie in frame i and columns in frame i or i±1 is kept (dense near-diagonal tiles).
    const int64_t s = h * w, B = 128, nB = (*lay)->num_q_blocks();
    const auto bm = (*lay)->block_mask();
    for (int64_t qb = 0; qb < nB; ++qb) {
      for (int64_t kb = 0; kb < nB; ++kb) {
        const int64_t r0 = qb * B, r1 = std::min(in.L, r0 + B) - 1, c0 = kb * B, c1 = std::min(in.L, c0 + B) - 1;
        if (r0 / s != r1 / s || c0 / s != c1 / s) continue;
        if (std::llabs(r0 / s - c0 / s) <= 1 || c0 / s == 0) {
          EXPECT_EQ(bm[static_cast<size_t>(qb * nB + kb)], 1) << "block (" << qb << ", " << kb << ") h=" << h;
        }
      }
    }
  }
}

TEST(Schedule, DenseStepsAndLayersRunDense) {
  auto m = make_attention("radial", {{"dense_steps", 2}, {"dense_layers", 1}, {"decay", 0.2}}, ModelInfo{});
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  StatsCollector stats;
  (*m)->set_stats_sink(stats.sink());
  (*m)->set_record(true);
  const int NH = 2, HD = 64;
  AttentionCall call;
  call.grid = {6, 8, 16};  // 768 tokens, 6 blocks
  const int64_t L = call.grid.tokens();
  const auto q = randn(static_cast<size_t>(L * NH * HD), 1), k = randn(q.size(), 2), v = randn(q.size(), 3);
  std::vector<float> out(q.size()), dense(q.size());
  dense_attention_cpu(dense.data(), nullptr, q.data(), k.data(), v.data(), L, L, NH, HD, 0.125f);
  const struct {
    int layer, step;
    bool dense;
  } calls[] = {{0, 5, true}, {3, 1, true}, {3, 2, false}, {7, 9, false}};
  for (const auto& c : calls) {
    call.layer = c.layer;
    call.step = c.step;
    ASSERT_TRUE((*m)->forward(call, q.data(), k.data(), v.data(), L, NH, HD, out.data()).is_ok());
    EXPECT_EQ((*m)->last_call().dense, c.dense) << "layer " << c.layer << " step " << c.step;
    const test::Diff d = test::compare(out.data(), dense.data(), static_cast<int64_t>(out.size()));
    if (c.dense) {
      EXPECT_LE(d.rel(), 1e-6);
    } else {
      EXPECT_GT(d.rel(), 1e-4);  // the sparse layout changes the output
    }
  }
  const auto rec = stats.records();
  ASSERT_EQ(rec.size(), 4u);
  EXPECT_TRUE(rec[0].dense && rec[1].dense && !rec[2].dense);
  EXPECT_DOUBLE_EQ(rec[0].density, 1.0);
  EXPECT_LT(rec[2].density, 1.0);
  EXPECT_GT(rec[2].seconds, 0.0);
  // dense_step_fraction: 0.3 of 10 steps -> steps 0..2 dense.
  auto f = make_attention("radial", {{"dense_steps", 0}, {"dense_layers", 0}, {"dense_step_fraction", 0.3}},
                          ModelInfo{});
  ASSERT_TRUE(f.is_ok());
  call.num_steps = 10;
  call.step = 2;
  EXPECT_TRUE((*f)->schedule().is_dense(call));
  call.step = 3;
  EXPECT_FALSE((*f)->schedule().is_dense(call));
  // dense_layers as a list
  auto g = make_attention("radial", {{"dense_steps", 0}, {"dense_layers", {0, 5}}}, ModelInfo{});
  ASSERT_TRUE(g.is_ok());
  call.layer = 5;
  EXPECT_TRUE((*g)->schedule().is_dense(call));
  call.layer = 4;
  EXPECT_FALSE((*g)->schedule().is_dense(call));
}

TEST(Stats, QualityRecallAndError) {
  auto m = make_attention("radial", {{"dense_steps", 0}, {"dense_layers", 0}, {"decay", 0.2}}, ModelInfo{});
  ASSERT_TRUE(m.is_ok());
  StatsCollector stats;
  (*m)->set_stats_sink(stats.sink());
  (*m)->set_quality_stats(true);
  AttentionCall call;
  call.grid = {12, 8, 16};
  const int64_t L = call.grid.tokens();
  const int NH = 1, HD = 64;
  const auto q = randn(static_cast<size_t>(L * NH * HD), 4), k = randn(q.size(), 5), v = randn(q.size(), 6);
  std::vector<float> out(q.size());
  ASSERT_TRUE((*m)->forward(call, q.data(), k.data(), v.data(), L, NH, HD, out.data()).is_ok());
  const auto r = stats.records().at(0);
  EXPECT_LT(r.density, 1.0);
  // Random q/k: attention is spread out, so the layout keeps about its density of the mass.
  EXPECT_GT(r.recall, 0.5 * r.density);
  EXPECT_LT(r.recall, 1.0);
  EXPECT_GT(r.rel_error, 1e-4);
  EXPECT_LT(r.rel_error, 1.0);
  const auto j = stats.to_json();
  EXPECT_EQ(j["summary"]["calls"], 1);
}

struct RetSetup {
  std::unique_ptr<AttentionMethod> m;
  AttentionCall call;
  int NH = 2, HD = 64;
  int64_t L = 0;
};

RetSetup make_rettention(const nlohmann::json& cfg, VideoGrid grid, int64_t text = 0, bool text_first = false) {
  RetSetup r;
  auto m = make_attention("rettention", cfg, ModelInfo{});
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  if (m.is_ok()) r.m = std::move(m).value();
  r.m->set_record(true);
  r.call.grid = grid;
  r.call.text_len = text;
  r.call.text_first = text_first;
  r.L = grid.tokens() + text;
  return r;
}

TEST(Rettention, SparseStepIsRhoTimesBandPlusResidualAndRhoClamps) {
  for (bool clamp : {true, false}) {
    // A wide band: ρ is close to 1, so ρ + 2λ passes 1 and the clamp matters.
    RetSetup r = make_rettention(
        {{"half_width", 150}, {"full_steps", 1}, {"cache_every", 10}, {"lambda", 0.04}, {"clamp_rho", clamp}},
        {2, 10, 16});
    const size_t n = static_cast<size_t>(r.L) * r.NH * r.HD;
    std::vector<float> out(n);
    std::vector<float> rho_cached, residual;
    for (int step = 0; step < 4; ++step) {
      const auto q = randn(n, 10 + step, 0.5f), k = randn(n, 20 + step, 0.5f), v = randn(n, 30 + step);
      r.call.step = step;
      ASSERT_TRUE(r.m->run(r.call, {q.data(), k.data(), v.data(), r.L, r.NH, r.HD}, {out.data(), nullptr}).is_ok());
      const CallRecord& rec = r.m->last_call();
      if (step == 0) {
        EXPECT_TRUE(rec.dense);
        continue;
      }
      ASSERT_TRUE(rec.layout);
      const Tensor& rho = rec.extras.at("rho");
      if (step == 1) {  // caching step: output is dense; ρ and R are stored
        std::vector<float> dense(n);
        dense_attention_cpu(dense.data(), nullptr, q.data(), k.data(), v.data(), r.L, r.L, r.NH, r.HD, 0.125f);
        EXPECT_LE(test::compare(out.data(), dense.data(), static_cast<int64_t>(n)).rel(), 1e-6);
        const Tensor& R = rec.extras.at("residual");
        residual.assign(R.f32(), R.f32() + R.numel());
        rho_cached.assign(rho.f32(), rho.f32() + rho.numel());
        continue;
      }
      // Sparse steps: O = ρ·O_band + R, checked with the dense-masked reference and the previous ρ.
      std::vector<float> ref(n);
      const SparseEpilogue epi{rho_cached.data(), residual.data()};
      ASSERT_TRUE(block_sparse_attention_reference(ref.data(), nullptr, *rec.layout, q.data(), k.data(), v.data(), r.L,
                                                   r.NH, r.HD, 0.125f, epi)
                      .is_ok());
      EXPECT_LE(test::compare(out.data(), ref.data(), static_cast<int64_t>(n)).rel(), test::tol::kKernelVsReference)
          << "step " << step;
      double max_rho = 0;
      for (int64_t i = 0; i < rho.numel(); ++i) {
        const float want = clamp ? std::min(rho_cached[i] + 0.04f, 1.0f) : rho_cached[i] + 0.04f;
        EXPECT_NEAR(rho.f32()[i], want, 1e-6);
        max_rho = std::max<double>(max_rho, rho.f32()[i]);
      }
      if (clamp) {
        EXPECT_LE(max_rho, 1.0);
      } else if (step == 3) {
        EXPECT_GT(max_rho, 1.0);
      }
      rho_cached.assign(rho.f32(), rho.f32() + rho.numel());
    }
  }
}

TEST(Rettention, StateIsPerBranchAndLayer) {
  RetSetup r = make_rettention({{"half_width", 8}, {"full_steps", 0}, {"cache_every", 100}}, {1, 8, 8});
  const size_t n = static_cast<size_t>(r.L) * r.NH * r.HD;
  const auto q = randn(n, 1), k = randn(n, 2), v = randn(n, 3);
  std::vector<float> out(n), dense(n);
  dense_attention_cpu(dense.data(), nullptr, q.data(), k.data(), v.data(), r.L, r.L, r.NH, r.HD, 0.125f);
  r.call.step = 0;  // caching for (layer 0, branch 0)
  ASSERT_TRUE(r.m->run(r.call, {q.data(), k.data(), v.data(), r.L, r.NH, r.HD}, {out.data(), nullptr}).is_ok());
  r.call.step = 1;
  r.call.branch = 1;  // no cache for branch 1 yet: this becomes its caching step, output dense
  ASSERT_TRUE(r.m->run(r.call, {q.data(), k.data(), v.data(), r.L, r.NH, r.HD}, {out.data(), nullptr}).is_ok());
  EXPECT_TRUE(r.m->last_call().extras.count("residual"));
  EXPECT_LE(test::compare(out.data(), dense.data(), static_cast<int64_t>(n)).rel(), 1e-6);
  r.call.branch = 0;  // branch 0 has its cache: a sparse step (same inputs: ρ·O_band + R = O_full again)
  ASSERT_TRUE(r.m->run(r.call, {q.data(), k.data(), v.data(), r.L, r.NH, r.HD}, {out.data(), nullptr}).is_ok());
  EXPECT_FALSE(r.m->last_call().extras.count("residual"));
  EXPECT_LE(test::compare(out.data(), dense.data(), static_cast<int64_t>(n)).rel(), 1e-5);
  r.m->reset();  // after reset the next call caches again
  ASSERT_TRUE(r.m->run(r.call, {q.data(), k.data(), v.data(), r.L, r.NH, r.HD}, {out.data(), nullptr}).is_ok());
  EXPECT_TRUE(r.m->last_call().extras.count("residual"));
}

TEST(Rettention, FrameBandMaskMatchesDefinition) {
  for (bool text_first : {false, true}) {
    const int64_t text = 5, s = 7 * 9, F = 4, fhw = 6;
    RetSetup r = make_rettention({{"frame_half_width", fhw}, {"full_steps", 0}, {"block", 64}}, {F, 7, 9}, text,
                                 text_first);
    QKV in;
    in.L = r.L;
    in.NH = 1;
    in.HD = 64;
    auto lay = r.m->plan_only(r.call, in);
    ASSERT_TRUE(lay.is_ok()) << lay.status().to_string();
    const auto m = expand_element_mask(**lay, 0);
    const int64_t vb = text_first ? text : 0;
    int64_t bad = 0;
    for (int64_t i = 0; i < r.L; ++i) {
      for (int64_t j = 0; j < r.L; ++j) {
        const bool vi = i >= vb && i < vb + F * s, vj = j >= vb && j < vb + F * s;
        const bool want = !vi || !vj || std::llabs((i - vb) % s - (j - vb) % s) <= fhw;
        bad += m[static_cast<size_t>(i * r.L + j)] != want;
      }
    }
    EXPECT_EQ(bad, 0) << "text_first=" << text_first;
    EXPECT_LT((*lay)->element_density(), 0.4);
  }
}

TEST(Config, ErrorsAndRegistry) {
  EXPECT_NE(method_names().find("radial"), std::string::npos);
  EXPECT_NE(method_names().find("rettention"), std::string::npos);
  EXPECT_NE(method_names().find("dense"), std::string::npos);
  auto expect_error = [](const std::string& method, const nlohmann::json& cfg, const std::string& text) {
    auto m = make_attention(method, cfg, ModelInfo{});
    ASSERT_FALSE(m.is_ok()) << method << " " << cfg.dump();
    EXPECT_NE(m.status().message().find(text), std::string::npos) << m.status().message();
  };
  expect_error("sparse_magic", nullptr, "unknown attention method");
  expect_error("radial", {{"decay", 0.2}, {"frobnicate", 1}}, "unknown key(s) \"frobnicate\"");
  expect_error("radial", {{"decay", 0}}, "\"decay\" = 0");
  expect_error("radial", {{"model", "cog"}}, "must be one of: wan, hunyuan");
  expect_error("radial", {{"method", "rettention"}}, "does not match");
  expect_error("radial", nlohmann::json::array({1, 2}), "must be a JSON object");
  expect_error("rettention", {{"half_width", 4}, {"frame_half_width", 4}}, "not both");
  expect_error("rettention", {{"window_fraction", 0.0}}, "(0, 1]");
  expect_error("rettention", {{"cache_every", 0}}, "\"cache_every\" = 0");
  expect_error("radial", {{"dense_steps", -1}}, "\"dense_steps\" = -1");
  // Presets apply and can be skipped.
  ModelInfo wan;
  wan.num_steps = 50;
  auto p = make_attention("radial", nullptr, wan);
  ASSERT_TRUE(p.is_ok());
  EXPECT_EQ((*p)->schedule().dense_steps, 12);
  EXPECT_EQ((*p)->schedule().dense_layers, 1);
  auto none = make_attention("radial", {{"preset", "none"}}, wan);
  ASSERT_TRUE(none.is_ok());
  EXPECT_EQ((*none)->schedule().dense_steps, 0);
  // Loading: inline JSON and overrides.
  auto j = load_attention_config(" {\"decay\": 0.5}");
  ASSERT_TRUE(j.is_ok());
  EXPECT_EQ((*j)["decay"], 0.5);
  nlohmann::json cfg = *j;
  ASSERT_TRUE(apply_config_override(&cfg, "model=hunyuan").is_ok());
  ASSERT_TRUE(apply_config_override(&cfg, "dense_layers=[0,3]").is_ok());
  EXPECT_EQ(cfg["model"], "hunyuan");
  EXPECT_EQ(cfg["dense_layers"][1], 3);
  EXPECT_FALSE(apply_config_override(&cfg, "novalue").is_ok());
}

}  // namespace
}  // namespace vdit::attn
