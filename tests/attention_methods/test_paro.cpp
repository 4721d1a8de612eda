// PAROAttention: the six axis orders and inverses against the golden, plan files (round trip, validation
// messages), step groups, the golden calibration case (o_kernel, perm, applied mask) in-process, the layout
// against dense masked attention in double, plan/model mismatches, and calibration on synthetic attention
// whose concentration is known per head.
#include <nlohmann/json.hpp>
#include <numeric>

#include "attention/dense_cpu.h"
#include "attention/methods/method.h"
#include "attention/methods/paro_calibrate.h"
#include "attention/methods/paro_orders.h"
#include "attention/paro_plan.h"
#include "tests/attention_methods/methods_test_util.h"

namespace vdit::attn {
namespace {

TEST(ParoOrders, MatchReferencePermutationsAndInverses) {
  auto f = test::open_method_data("paro_subset.safetensors");
  ASSERT_TRUE(f);
  const std::vector<int64_t> perm = test::int_values(test::get_raw(*f, "perm.out.perm"));  // [6, 198]
  const std::vector<int64_t> inv = test::int_values(test::get_raw(*f, "perm.out.inv"));
  for (int o = 0; o < kParoOrders; ++o) {
    std::vector<int32_t> p, i;
    paro_sequence_perm(&p, &i, {4, 6, 8}, o, 6, true);
    test::expect_same_ints(std::vector<int64_t>(p.begin(), p.end()),
                           std::vector<int64_t>(perm.begin() + o * 198, perm.begin() + (o + 1) * 198),
                           strfmt("perm of order %s", paro_order_name(o)));
    test::expect_same_ints(std::vector<int64_t>(i.begin(), i.end()),
                           std::vector<int64_t>(inv.begin() + o * 198, inv.begin() + (o + 1) * 198),
                           strfmt("inverse of order %s", paro_order_name(o)));
  }
  // README: order 2 (HWF) puts video token (f, y, x) at (y·w + x)·F + f.
  const std::vector<int32_t> pos = paro_video_pos({4, 6, 8}, 2);
  EXPECT_EQ(pos[(3 * 6 + 2) * 8 + 5], (2 * 8 + 5) * 4 + 3);
}

ParoPlan make_plan(const VideoGrid& grid, int64_t text, int groups, int layers, int heads, int64_t nq,
                   const std::vector<int32_t>& order, uint32_t seed, double density) {
  ParoPlan p;
  p.groups = groups;
  p.layers = layers;
  p.heads = heads;
  p.nq = nq;
  p.grid = grid;
  p.text_len = text;
  p.steps = 10;
  p.order = order;
  p.block_mask = Tensor::zeros(DType::u8, {groups, layers, heads, nq, nq}).value();
  const auto r = test::randn(static_cast<size_t>(p.block_mask.numel()), seed);
  const double cut = -0.5 + 2.0 * (0.5 - density);  // rough quantile of N(0,1) mapped to the wanted density
  for (int64_t e = 0; e < p.block_mask.numel(); ++e) p.block_mask.data<uint8_t>()[e] = r[e] > cut ? 1 : 0;
  return p;
}

TEST(ParoPlanFile, RoundTripAndValidation) {
  ParoPlan p = make_plan({3, 5, 7}, 4, 2, 3, 2, 2, {0, 1, 2, 3, 4, 5}, 7, 0.5);
  const std::string path = test::tmp_path("plan_roundtrip.safetensors");
  ASSERT_TRUE(save_paro_plan(path, p).is_ok());
  auto q = load_paro_plan(path);
  ASSERT_TRUE(q.is_ok()) << q.status().to_string();
  EXPECT_EQ(q->groups, 2);
  EXPECT_EQ(q->layers, 3);
  EXPECT_EQ(q->heads, 2);
  EXPECT_EQ(q->nq, 2);
  EXPECT_EQ(q->grid.w, 7);
  EXPECT_EQ(q->text_len, 4);
  EXPECT_EQ(q->steps, 10);
  EXPECT_EQ(q->order, p.order);
  test::expect_same_ints(q->block_mask, p.block_mask, "block_mask");
  EXPECT_EQ(q->mask(1, 2, 1)[3], p.block_mask.data<uint8_t>()[((1 * 3 + 2) * 2 + 1) * 4 + 3]);

  // Orders outside 0..5, block sizes, mask sides and shapes are rejected with the reason.
  ParoPlan bad = p;
  bad.order[4] = 6;
  Status s = save_paro_plan(path, bad);
  EXPECT_NE(s.message().find("order of layer 2, head 0 is 6"), std::string::npos) << s.message();
  bad = p;
  bad.block = 96;
  EXPECT_NE(save_paro_plan(path, bad).message().find("block 96"), std::string::npos);
  bad = make_plan({3, 5, 7}, 4, 2, 3, 2, 3, p.order, 7, 0.5);  // 105 tokens need 2 blocks of 64 (or 1)
  EXPECT_NE(save_paro_plan(path, bad).message().find("need 2 (or 1 with a dense tail)"), std::string::npos)
      << save_paro_plan(path, bad).message();
  ASSERT_TRUE(save_safetensors(path, {{"order", Tensor::zeros(DType::i32, {3, 2}).value()}}).is_ok());
  auto r = load_paro_plan(path);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("\"block_mask\""), std::string::npos) << r.status().message();
  ASSERT_TRUE(save_safetensors(path, {{"order", Tensor::zeros(DType::i32, {3, 2}).value()},
                                      {"block_mask", Tensor::zeros(DType::u8, {1, 3, 2, 2, 2}).value()}})
                  .is_ok());
  r = load_paro_plan(path);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("metadata \"grid\""), std::string::npos) << r.status().message();
}

TEST(ParoPlanFile, StepGroups) {
  EXPECT_EQ(paro_step_group(6, 10, 2), 1);  // the golden's i_timestep 0.6 with 2 groups
  EXPECT_EQ(paro_step_group(0, 50, 4), 0);
  EXPECT_EQ(paro_step_group(12, 50, 4), 0);
  EXPECT_EQ(paro_step_group(13, 50, 4), 1);
  EXPECT_EQ(paro_step_group(49, 50, 4), 3);
  EXPECT_EQ(paro_step_group(70, 50, 4), 3);  // clamped
  EXPECT_EQ(paro_step_group(3, 0, 4), 0);
}

// The golden calibration case: plan group 1 of `sparse_plan` ([2, 3, 6, 6] over 64-token blocks of the 432
// video tokens, 48 trailing tokens dense), 8 text tokens first, orders [0, 2, 5].
struct GoldenCalib {
  Tensor q, k, v;  // [440, 3, 64]
  ParoPlan plan;
  Tensor o_rows;   // [220, 3, 64]: o_kernel rows 0::2, CLI layout
};

GoldenCalib golden_calib(bool ceil_blocks) {
  GoldenCalib g;
  auto f = test::open_method_data("paro_subset.safetensors");
  g.q = test::swap01(test::get_f32(*f, "calib.in.q"));
  g.k = test::swap01(test::get_f32(*f, "calib.in.k"));
  g.v = test::swap01(test::get_f32(*f, "calib.in.v"));
  g.o_rows = test::swap01(test::get_f32(*f, "calib.out.o_kernel_rows"));
  const Tensor sp = test::get_raw(*f, "calib.out.sparse_plan");  // [2, 3, 6, 6]
  const int64_t nq = ceil_blocks ? 7 : 6;
  g.plan = make_plan({4, 9, 12}, 8, 2, 1, 3, nq, {0, 2, 5}, 1, 1.0);
  for (int gr = 0; gr < 2; ++gr)
    for (int h = 0; h < 3; ++h)
      for (int64_t i = 0; i < nq; ++i)
        for (int64_t j = 0; j < nq; ++j)
          g.plan.block_mask.data<uint8_t>()[((gr * 3 + h) * nq + i) * nq + j] =
              i < 6 && j < 6 ? sp.data<uint8_t>()[((gr * 3 + h) * 6 + i) * 6 + j] : 1;
  return g;
}

TEST(ParoMethod, ReproducesTheGoldenCalibrationCase) {
  for (bool ceil_blocks : {false, true}) {
    SCOPED_TRACE(ceil_blocks ? "plan with 7 blocks (tail block on)" : "plan with 6 blocks (tail dense)");
    GoldenCalib g = golden_calib(ceil_blocks);
    const std::string path = test::tmp_path(strfmt("plan_golden_%d.safetensors", ceil_blocks ? 7 : 6));
    ASSERT_TRUE(save_paro_plan(path, g.plan).is_ok());
    ModelInfo model;
    model.num_layers = 1;
    model.num_heads = 3;
    model.head_dim = 64;
    auto m = make_attention("paro", {{"plan", path}}, model);
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    (*m)->set_record(true);
    AttentionCall call;
    call.grid = {4, 9, 12};
    call.text_len = 8;
    call.text_first = true;
    call.step = 6;
    call.num_steps = 10;
    std::vector<float> out(440 * 3 * 64, NAN);
    ASSERT_TRUE((*m)->run(call, {g.q.f32(), g.k.f32(), g.v.f32(), 440, 3, 64}, {out.data(), nullptr}).is_ok());
    Tensor o = Tensor::from_f32(out, {440, 3, 64}).value();
    test::expect_close(test::every_nth(o, 0, 2), g.o_rows, 1e-5, "o_kernel");
    const CallRecord& rec = (*m)->last_call();
    auto f = test::open_method_data("paro_subset.safetensors");
    test::expect_same_ints(rec.extras.at("paro_perm"), test::get_raw(*f, "calib.out.perm"), "perm");
    EXPECT_EQ(rec.extras.at("paro_group").data<int32_t>()[0], 1);
    const Tensor& applied = rec.extras.at("paro_block_mask");  // [3, nq, nq]
    const Tensor want = test::get_raw(*f, "calib.out.block_mask_applied");
    for (int h = 0; h < 3; ++h)
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j)
          ASSERT_EQ(applied.data<uint8_t>()[(h * applied.dim(1) + i) * applied.dim(1) + j],
                    want.data<uint8_t>()[(h * 6 + i) * 6 + j])
              << "head " << h << " block " << i << "," << j;
  }
}

TEST(ParoMethod, MatchesDenseMaskedAttention) {
  // 3 x 5 x 7 = 105 video tokens (2 blocks of 64, the second partial) + 20 text tokens after them, and a
  // second case with 3 x 8 x 8 = 192 (3 full blocks) + 10 text tokens first.
  struct Case {
    VideoGrid grid;
    int64_t text;
    bool first;
  };
  for (const Case& c : {Case{{3, 5, 7}, 20, false}, Case{{3, 8, 8}, 10, true}, Case{{5, 6, 9}, 0, false}}) {
    const int NH = 4, HD = 32;
    const int64_t Lv = c.grid.tokens(), L = Lv + c.text, nq = (Lv + 63) / 64;
    SCOPED_TRACE(strfmt("paro(grid=%lldx%lldx%lld, text=%lld%s)", (long long)c.grid.f, (long long)c.grid.h,
                        (long long)c.grid.w, (long long)c.text, c.first ? " first" : ""));
    ParoPlan plan = make_plan(c.grid, c.text, 3, 2, NH, nq, {1, 2, 3, 4, 5, 0, 2, 4}, 99, 0.4);
    const std::string path = test::tmp_path("plan_masked.safetensors");
    ASSERT_TRUE(save_paro_plan(path, plan).is_ok());
    ModelInfo model;
    model.num_layers = 2;
    model.num_heads = NH;
    model.grid = c.grid;
    auto m = make_attention("paro", {{"plan", path}}, model);
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    AttentionCall call;
    call.grid = c.grid;
    call.text_len = c.text;
    call.text_first = c.first;
    call.layer = 1;
    call.step = 7;
    call.num_steps = 10;  // group 2
    const auto q = test::randn(static_cast<size_t>(L * NH * HD), 5), k = test::randn(q.size(), 6),
               v = test::randn(q.size(), 7);
    std::vector<float> out(q.size(), NAN), lse(static_cast<size_t>(NH * L), NAN);
    ASSERT_TRUE((*m)->run(call, {q.data(), k.data(), v.data(), L, NH, HD}, {out.data(), lse.data()}).is_ok());
    const int64_t vb = c.first ? c.text : 0;
    std::vector<std::vector<int32_t>> pos(NH);
    for (int h = 0; h < NH; ++h) pos[h] = paro_video_pos(c.grid, plan.order_of(1, h));
    auto keep = [&](int h, int64_t i, int64_t j) {
      if (i < vb || i >= vb + Lv || j < vb || j >= vb + Lv) return true;  // text
      const int64_t a = pos[h][i - vb] / 64, b = pos[h][j - vb] / 64;
      return a == b || a == nq - 1 || b == nq - 1 || plan.mask(2, 1, h)[a * nq + b] != 0;
    };
    std::vector<float> ref, ref_lse;
    test::masked_attention_reference(&ref, &ref_lse, q.data(), k.data(), v.data(), L, NH, HD, keep);
    const test::Diff d = test::compare(out.data(), ref.data(), static_cast<int64_t>(out.size()));
    EXPECT_TRUE(d.finite);
    EXPECT_LE(d.rel(), 1e-5) << "worst index " << d.worst;
    EXPECT_LE(test::compare(lse.data(), ref_lse.data(), NH * L).max_abs, 1e-5);
  }
}

TEST(ParoMethod, RejectsMissingOrMismatchedPlans) {
  ModelInfo model;
  model.num_layers = 2;
  model.num_heads = 4;
  auto r = make_attention("paro", nullptr, model);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("needs a plan"), std::string::npos) << r.status().message();
  r = make_attention("paro", {{"plan", "/nonexistent/plan.safetensors"}}, model);
  ASSERT_FALSE(r.is_ok());

  const std::string path = test::tmp_path("plan_mismatch.safetensors");
  ASSERT_TRUE(save_paro_plan(path, make_plan({3, 5, 7}, 0, 1, 2, 4, 2, std::vector<int32_t>(8, 0), 1, 0.5)).is_ok());
  model.num_layers = 30;
  r = make_attention("paro", {{"plan", path}}, model);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("the model has 30 layers"), std::string::npos) << r.status().message();
  model.num_layers = 2;
  model.num_heads = 12;
  r = make_attention("paro", {{"plan", path}}, model);
  EXPECT_NE(r.status().message().find("the model has 12 heads"), std::string::npos) << r.status().message();
  model.num_heads = 4;
  model.grid = {3, 6, 7};
  r = make_attention("paro", {{"plan", path}}, model);
  EXPECT_NE(r.status().message().find("latent grid is 3x6x7"), std::string::npos) << r.status().message();
  model.grid = {};
  r = make_attention("paro", {{"plan", path}, {"block", 128}}, model);
  EXPECT_NE(r.status().message().find("64-token blocks"), std::string::npos) << r.status().message();
  r = make_attention("paro", {{"plan", path}}, model);
  ASSERT_TRUE(r.is_ok());
  AttentionCall call;
  call.grid = {3, 5, 8};  // not the plan's
  std::vector<float> x(120 * 4 * 16, 0.f), out(x.size());
  Status s = (*r)->run(call, {x.data(), x.data(), x.data(), 120, 4, 16}, {out.data(), nullptr});
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("the call has 3x5x8"), std::string::npos) << s.message();
}

TEST(ParoCalibrate, ChoosesConcentratedOrdersAndHitsTheDensity) {
  const VideoGrid grid{8, 8, 8};  // 512 tokens, 8 x 8 blocks of 64
  const int NH = 3, HD = 32;
  const std::vector<int> mode = {0, 1, 2};
  ParoCalibrationOptions o;
  o.grid = grid;
  o.layers = 2;
  o.heads = NH;
  o.groups = 2;
  o.num_steps = 4;
  o.density = 0.5;  // 32 of 64 blocks: the 22 forced ones (diagonal, last row/column) + the 10 heaviest
  std::vector<std::vector<float>> qk;
  for (int s = 0; s < 4; ++s) qk.push_back(test::clustered_qk(grid, NH, HD, mode, 100 + 10 * s));
  auto replay = [&](const ParoCallSink& sink) -> Status {
    for (int layer = 0; layer < 2; ++layer)
      for (int s = 0; s < 4; ++s) VDIT_TRY(sink({s, layer, qk[s].data(), qk[s].data(), 512, NH, HD}));
    return Status::ok();
  };
  auto plan = calibrate_paro_plan(o, replay);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  // With 8 x 8 x 8 and 64-token blocks a block spans the two fastest axes, so a cluster stays inside one
  // block exactly when its varying axis is one of them: temporal (f varies) -> HWF, HFW, WHF, WFH; rows (x
  // varies) -> FHW, FWH, HWF, HFW; columns (y varies) -> FHW, FWH, WHF, WFH. The other two spread it.
  const std::vector<std::vector<int>> want = {{2, 3, 4, 5}, {0, 1, 2, 3}, {0, 1, 4, 5}};
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < NH; ++h) {
      const int got = plan->order_of(l, h);
      EXPECT_NE(std::find(want[h].begin(), want[h].end(), got), want[h].end())
          << "layer " << l << " head " << h << " chose " << paro_order_name(got);
    }
  const int64_t nq = plan->nq;
  ASSERT_EQ(nq, 8);
  for (int g = 0; g < 2; ++g)
    for (int h = 0; h < NH; ++h) {
      const uint8_t* m = plan->mask(g, 1, h);
      int64_t on = 0;
      for (int64_t e = 0; e < nq * nq; ++e) on += m[e];
      EXPECT_EQ(on, 32) << "group " << g << " head " << h;
      for (int64_t i = 0; i < nq; ++i) EXPECT_TRUE(m[i * nq + i] && m[i * nq + nq - 1] && m[(nq - 1) * nq + i]);
    }
  // The plan keeps most of the attention: recall measured by the method's quality statistics.
  const std::string path = test::tmp_path("plan_calibrated.safetensors");
  ASSERT_TRUE(save_paro_plan(path, *plan).is_ok());
  ModelInfo model;
  model.num_layers = 2;
  model.num_heads = NH;
  auto m = make_attention("paro", {{"plan", path}}, model);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  StatsCollector stats;
  (*m)->set_stats_sink(stats.sink());
  (*m)->set_quality_stats(true);
  AttentionCall call;
  call.grid = grid;
  call.layer = 1;
  call.step = 3;
  call.num_steps = 4;
  std::vector<float> out(qk[3].size());
  ASSERT_TRUE((*m)->run(call, {qk[3].data(), qk[3].data(), qk[3].data(), 512, NH, HD}, {out.data(), nullptr}).is_ok());
  EXPECT_GT(stats.records().at(0).recall, 0.95);

  // A group without any call is an error that names the steps it needs.
  o.groups = 4;
  o.num_steps = 8;
  auto r = calibrate_paro_plan(o, replay);  // steps 0..3 only: groups 2 and 3 are empty
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("step group 2 of layer 0 has no calibration call (steps [4, 6)"),
            std::string::npos)
      << r.status().message();
  o.density = 0;
  EXPECT_FALSE(ParoCalibrator::create(o).is_ok());
}

TEST(ParoCalibrate, CalibrationAttentionIsDenseAndFeedsBothPasses) {
  const VideoGrid grid{4, 4, 8};  // 128 tokens + 5 text tokens first
  const int NH = 2, HD = 16, L = 133;
  ParoCalibrationOptions o;
  o.grid = grid;
  o.text_len = 5;
  o.text_first = true;
  o.layers = 2;
  o.heads = NH;
  o.num_steps = 3;
  o.groups = 3;
  o.density = 0.75;
  std::vector<std::vector<float>> q, k, v;
  for (int s = 0; s < 3; ++s) {
    q.push_back(test::randn(static_cast<size_t>(L * NH * HD), 40 + s, 2.f));
    k.push_back(test::randn(q.back().size(), 50 + s, 2.f));
    v.push_back(test::randn(q.back().size(), 60 + s));
  }
  auto cal = ParoCalibrator::create(o);
  ASSERT_TRUE(cal.is_ok());
  ParoCalibrationAttention attention(cal->get());
  AttentionCall call;
  call.grid = grid;
  call.text_len = 5;
  call.text_first = true;
  call.num_layers = 2;
  call.num_steps = 3;
  std::vector<float> out(q[0].size()), ref(q[0].size());
  for (int pass = 0; pass < 2; ++pass) {
    for (int s = 0; s < 3; ++s)
      for (int l = 0; l < 2; ++l)
        for (int branch = 0; branch < 2; ++branch) {
          call.step = s;
          call.layer = l;
          call.branch = branch;
          ASSERT_TRUE(attention.forward(call, q[s].data(), k[s].data(), v[s].data(), L, NH, HD, out.data()).is_ok());
          dense_attention_cpu(ref.data(), nullptr, q[s].data(), k[s].data(), v[s].data(), L, L, NH, HD, 0.25f);
          ASSERT_EQ(out, ref) << "the calibration run must see exact dense attention";
        }
    if (pass == 0) {
      ASSERT_TRUE((*cal)->choose_orders().is_ok());
    }
  }
  auto plan = (*cal)->finish();
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  // The same calls replayed through calibrate_paro_plan give the same plan.
  auto replayed = calibrate_paro_plan(o, [&](const ParoCallSink& sink) -> Status {
    for (int s = 0; s < 3; ++s)
      for (int l = 0; l < 2; ++l)
        for (int branch = 0; branch < 2; ++branch) VDIT_TRY(sink({s, l, q[s].data(), k[s].data(), L, NH, HD}));
    return Status::ok();
  });
  ASSERT_TRUE(replayed.is_ok());
  EXPECT_EQ(plan->order, replayed->order);
  test::expect_same_ints(plan->block_mask, replayed->block_mask, "block_mask");
  EXPECT_EQ(plan->nq, 2);
  // A run of another shape is refused.
  call.num_steps = 50;
  Status s = attention.forward(call, q[0].data(), k[0].data(), v[0].data(), L, NH, HD, out.data());
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("the run has 50 steps"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace vdit::attn
