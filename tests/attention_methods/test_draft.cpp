// DraftAttention: the reference's kept count, region reorder/restore indices, pooled Q/K, draft map, masks
// and thresholds against the golden (case 1; case 0 in the full-golden test), the attention of exactly
// tiling and padded grids (text first or last) against dense masked attention in double, and config errors.
#include <nlohmann/json.hpp>

#include "attention/methods/draft_plan.h"
#include "attention/methods/method.h"
#include "tests/attention_methods/methods_test_util.h"

namespace vdit::attn {
namespace {

TEST(DraftPlan, ExcludedCountUsesTheReferenceDoubleArithmetic) {
  EXPECT_EQ(draft_excluded_count(0.9, 81), 72);    // golden case 1: 0.9000000000000000222 * 81
  EXPECT_EQ(draft_excluded_count(0.75, 256), 192);  // golden case 0
  EXPECT_EQ(draft_excluded_count(0.1, 10), 0);      // 1 - (1 - 0.1) = 0.09999999999999998: 0, not 1
  EXPECT_EQ(draft_excluded_count(0.2, 5), 0);
  EXPECT_EQ(draft_excluded_count(1.0, 50), 50);
}

TEST(DraftPlan, GoldenCase1GeometryAndDraftMap) {
  auto f = test::open_method_data("draft_subset.safetensors");
  ASSERT_TRUE(f);
  const nlohmann::json meta = nlohmann::json::parse(f->metadata().at("case1"));
  auto geo = draft_geometry({1, 24, 48}, 100, false, 8, 16);
  ASSERT_TRUE(geo.is_ok()) << geo.status().to_string();
  EXPECT_TRUE(geo->aligned);
  EXPECT_EQ(geo->g, meta["num_pooled"].get<int64_t>());
  test::expect_same_ints(std::vector<int64_t>(geo->slots.begin(), geo->slots.end()),
                         test::int_values(test::get_raw(*f, "case1.out.reorg_idx")), "reorg_idx");
  test::expect_same_ints(std::vector<int64_t>(geo->restore.begin(), geo->restore.end()),
                         test::int_values(test::get_raw(*f, "case1.out.restore_idx")), "restore_idx");
  EXPECT_EQ(draft_excluded_count(meta["sparsity_ratio"].get<double>(), geo->g * geo->g),
            meta["k_excluded"].get<int64_t>());

  const Tensor q = test::get_f32(*f, "case1.in.q"), k = test::get_f32(*f, "case1.in.k");
  const DraftMap dm = draft_map(*geo, q.f32(), k.f32(), 3, 64, 0.9);
  test::expect_close(Tensor::from_f32(dm.q_pooled, {9, 3, 64}).value(), test::get_f32(*f, "case1.out.q_pooled"), 1e-5,
                     "q_pooled");
  test::expect_close(Tensor::from_f32(dm.k_pooled, {9, 3, 64}).value(), test::get_f32(*f, "case1.out.k_pooled"), 1e-5,
                     "k_pooled");
  test::expect_close(Tensor::from_f32(dm.map, {3, 9, 9}).value(), test::get_f32(*f, "case1.out.draft_map"), 1e-5,
                     "draft_map");
  test::expect_close(Tensor::from_f32(dm.threshold, {3}).value(), test::get_f32(*f, "case1.out.threshold"), 1e-5,
                     "threshold");
  test::expect_same_ints(std::vector<int64_t>(dm.mask.begin(), dm.mask.end()),
                         test::int_values(test::get_raw(*f, "case1.out.mask_headwise")), "mask_headwise");
}

TEST(DraftPlan, PaddedGeometry) {
  // 10 x 20 frame with 8 x 16 regions: 2 x 2 regions per frame of 128, 32, 64 and 16 tokens.
  auto geo = draft_geometry({2, 10, 20}, 7, true, 8, 16);
  ASSERT_TRUE(geo.is_ok());
  EXPECT_FALSE(geo->aligned);
  EXPECT_EQ(geo->g, 8);
  EXPECT_EQ(geo->region_size, (std::vector<int32_t>{128, 32, 32, 8, 128, 32, 32, 8}));
  ASSERT_EQ(geo->slots.size(), 8u * 128 + 7);
  std::vector<int> seen(static_cast<size_t>(geo->L), 0);
  for (size_t s = 0; s < geo->slots.size(); ++s) {
    if (geo->slots[s] < 0) continue;
    ++seen[static_cast<size_t>(geo->slots[s])];
    EXPECT_EQ(geo->restore[static_cast<size_t>(geo->slots[s])], static_cast<int32_t>(s));
  }
  for (int64_t t = 0; t < geo->L; ++t) ASSERT_EQ(seen[static_cast<size_t>(t)], 1) << "token " << t;
  EXPECT_EQ(geo->slots[8 * 128], 0);          // text first in the call, last in the reordered sequence
  EXPECT_EQ(geo->slots[1 * 128 + 31], 7 + 7 * 20 + 19);  // region (0, 0, 1): last token = row 7, col 19
  EXPECT_FALSE(draft_geometry({2, 10, 20}, 0, false, 8, 10).is_ok());  // 80 tokens: no kernel block
}

void check_draft_call(const VideoGrid& grid, int64_t text, bool text_first, double sparsity, uint32_t seed) {
  const int64_t L = grid.tokens() + text;
  const int NH = 2, HD = 64;
  SCOPED_TRACE(strfmt("draft(grid=%lldx%lldx%lld, text=%lld%s, r=%g)", (long long)grid.f, (long long)grid.h,
                      (long long)grid.w, (long long)text, text_first ? " first" : "", sparsity));
  const auto q = test::randn(static_cast<size_t>(L * NH * HD), seed, 1.5f);
  const auto k = test::randn(q.size(), seed + 1, 1.5f);
  const auto v = test::randn(q.size(), seed + 2);
  ModelInfo model;
  model.num_heads = NH;
  auto m = make_attention("draft", {{"preset", "none"}, {"sparsity", sparsity}}, model);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  (*m)->set_record(true);
  AttentionCall call;
  call.grid = grid;
  call.text_len = text;
  call.text_first = text_first;
  std::vector<float> out(q.size(), NAN), lse(static_cast<size_t>(NH * L), NAN);
  Status s = (*m)->run(call, {q.data(), k.data(), v.data(), L, NH, HD}, {out.data(), lse.data()});
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  const CallRecord& rec = (*m)->last_call();
  const Tensor& mask = rec.extras.at("mask_headwise");  // [NH, g, g]
  const Tensor& restore = rec.extras.at("restore_idx");
  const int64_t g = mask.dim(1), B = 128;
  auto region = [&](int64_t t) {
    const int64_t slot = restore.data<int32_t>()[t];
    return slot < g * B ? slot / B : -1;  // -1: text
  };
  int64_t kept = 0;
  auto keep = [&](int h, int64_t i, int64_t j) {
    const int64_t a = region(i), b = region(j);
    return a < 0 || b < 0 || a == b || mask.data<uint8_t>()[(h * g + a) * g + b] != 0;
  };
  for (int h = 0; h < NH; ++h)
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < L; ++j) kept += keep(h, i, j) ? 1 : 0;
  std::vector<float> ref, ref_lse;
  test::masked_attention_reference(&ref, &ref_lse, q.data(), k.data(), v.data(), L, NH, HD, keep);
  const test::Diff d = test::compare(out.data(), ref.data(), static_cast<int64_t>(out.size()));
  EXPECT_TRUE(d.finite) << "NaN/Inf or unwritten output at " << d.worst;
  EXPECT_LE(d.rel(), 1e-5) << "worst index " << d.worst;
  const test::Diff dl = test::compare(lse.data(), ref_lse.data(), NH * L);
  EXPECT_LE(dl.max_abs, 1e-5) << "lse worst index " << dl.worst;
  const double density = static_cast<double>(kept) / (NH * L * L);
  if (rec.layout) {
    EXPECT_NEAR(rec.layout->element_density(), density, 1e-9);
  } else {
    EXPECT_NEAR(rec.density, density, 1e-9);
  }
  EXPECT_LT(density, 1.0);
}

TEST(DraftMethod, AlignedAndPaddedGridsMatchDenseMaskedAttention) {
  check_draft_call({2, 16, 32}, 0, false, 0.75, 100);   // tiles exactly: BlockLayout path
  check_draft_call({1, 16, 48}, 40, false, 0.6, 200);   // text after the video
  check_draft_call({2, 10, 20}, 0, false, 0.7, 300);    // padded regions
  check_draft_call({3, 9, 17}, 33, true, 0.5, 400);     // padded, text first
  check_draft_call({2, 8, 16}, 0, false, 1.0, 500);     // r = 1 keeps nothing: only the forced diagonal
}

TEST(DraftMethod, PresetsAndErrors) {
  ModelInfo model;
  auto m = make_attention("draft", nullptr, model);
  ASSERT_TRUE(m.is_ok());
  EXPECT_DOUBLE_EQ((*m)->describe()["sparsity"].get<double>(), 0.75);
  EXPECT_EQ((*m)->describe()["dense_layers"], 1);
  EXPECT_EQ((*m)->schedule().block, 128);
  m = make_attention("draft", {{"pool", {8, 8}}}, model);
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ((*m)->schedule().block, 64);
  model.family = "hunyuan";
  m = make_attention("draft", nullptr, model);
  EXPECT_DOUBLE_EQ((*m)->describe()["sparsity"].get<double>(), 0.9);

  const std::pair<nlohmann::json, const char*> bad[] = {
      {{{"sparsity", 0.0}}, "must be in (0, 1]"},
      {{{"sparsity", 1.2}}, "must be in (0, 1]"},
      {{{"sparsity", "high"}}, "expected a number"},
      {{{"pool", {8, 10}}}, "64 or 128 tokens"},
      {{{"pool", {8, 16}}, {"block", 64}}, "leave \"block\" out"},
      {{{"ratio", 0.5}}, "unknown key(s) \"ratio\""},
  };
  for (const auto& [cfg, needle] : bad) {
    auto r = make_attention("draft", cfg, model);
    ASSERT_FALSE(r.is_ok()) << cfg.dump();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  }
}

TEST(DraftMethod, PaddedGridsHaveNoStaticPlan) {
  ModelInfo model;
  auto m = make_attention("draft", {{"preset", "none"}}, model);
  ASSERT_TRUE(m.is_ok());
  AttentionCall call;
  call.grid = {1, 10, 20};
  std::vector<float> x(200 * 64, 0.5f);
  auto r = (*m)->plan_only(call, {x.data(), x.data(), x.data(), 200, 1, 64});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("padded"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace vdit::attn
