// VMoBA: partitions, chunk-mean gates and all nine selection cases against the reference goldens (exact for
// indices and selections, 1e-5 for gates), ragged partitions, hand-made selection rules, the attention
// against dense masked attention in double over self ∪ selected chunks, and configuration errors.
#include <nlohmann/json.hpp>
#include <numeric>

#include "attention/methods/method.h"
#include "attention/methods/vmoba_select.h"
#include "tests/attention_methods/methods_test_util.h"

namespace vdit::attn {
namespace {

constexpr int64_t kAll = int64_t{1} << 40;  // "whole axis"
const VideoGrid kGrid{6, 8, 10};
const std::array<int64_t, 3> kBoxes[3] = {{1, kAll, kAll}, {kAll, 4, 5}, {2, 4, 5}};  // golden part0..2

TEST(VmobaPartition, MatchesReferenceRearrangementAndChunks) {
  auto f = test::open_method_data("vmoba_subset.safetensors");
  ASSERT_TRUE(f);
  for (int p = 0; p < 3; ++p) {
    auto part = vmoba_partition(kGrid, kBoxes[p]);
    ASSERT_TRUE(part.is_ok()) << part.status().to_string();
    const std::string pre = strfmt("part%d.", p);
    test::expect_same_ints(std::vector<int64_t>(part->perm.begin(), part->perm.end()),
                           test::int_values(test::get_raw(*f, pre + "perm")), pre + "perm");
    test::expect_same_ints(std::vector<int64_t>(part->cu_chunk.begin(), part->cu_chunk.end()),
                           test::int_values(test::get_raw(*f, pre + "cu_chunk")), pre + "cu_chunk");
  }
}

TEST(VmobaPartition, RaggedBoxesTileTheGrid) {
  const VideoGrid grid{5, 7, 9};
  auto part = vmoba_partition(grid, {2, 3, 4});  // 3 x 3 x 3 boxes, clipped at the far edges
  ASSERT_TRUE(part.is_ok());
  ASSERT_EQ(part->num_chunks(), 27);
  std::vector<int32_t> sorted = part->perm;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < grid.tokens(); ++i) ASSERT_EQ(sorted[i], i) << "not a permutation";
  for (int c = 0; c < 27; ++c) {
    const int bt = c / 9, by = c / 3 % 3, bx = c % 3;
    const int64_t n0 = part->cu_chunk[c], n1 = part->cu_chunk[c + 1];
    EXPECT_EQ(n1 - n0, (bt == 2 ? 1 : 2) * (by == 2 ? 1 : 3) * (bx == 2 ? 1 : 4)) << "chunk " << c;
    for (int64_t n = n0; n < n1; ++n) {
      const int64_t t = part->perm[n] / 63, y = part->perm[n] / 9 % 7, x = part->perm[n] % 9;
      ASSERT_TRUE(t / 2 == bt && y / 3 == by && x / 4 == bx) << "token " << part->perm[n] << " outside chunk " << c;
      ASSERT_EQ(part->chunk_of[n], c);
    }
  }
  EXPECT_FALSE(vmoba_partition(grid, {0, 1, 1}).is_ok());
  EXPECT_FALSE(vmoba_partition({0, 7, 9}, {1, 1, 1}).is_ok());
}

TEST(VmobaGates, MatchReference) {
  auto f = test::open_method_data("vmoba_subset.safetensors");
  ASSERT_TRUE(f);
  const Tensor q = test::get_f32(*f, "in.q"), k = test::get_f32(*f, "in.k");  // [480, 2, 64]
  for (int p = 0; p < 3; ++p) {
    const VmobaPartition part = vmoba_partition(kGrid, kBoxes[p]).value();
    const VmobaGates g = vmoba_gates(part, q.f32(), k.f32(), 480, 2, 64);
    const int C = part.num_chunks();
    Tensor kgw = Tensor::from_f32(g.key_gate_weight, {C, 2, 64}).value();
    test::expect_close(kgw, test::get_f32(*f, strfmt("part%d.key_gate_weight", p)), 1e-5, "key_gate_weight");
    Tensor gate = Tensor::create(DType::f32, {C, 2, 480}).value();  // the reference's [C, H, N]
    for (int h = 0; h < 2; ++h)
      for (int c = 0; c < C; ++c)
        std::copy_n(g.gate.data() + (h * C + c) * 480, 480, gate.f32() + (c * 2 + h) * 480);
    // Gates reach ~38 with f32 dot products in the reference (README: GPU vs CPU 7.6e-6 absolute).
    test::expect_close(gate, test::get_f32(*f, strfmt("part%d.gate", p)), 1e-5, strfmt("part%d.gate", p));
  }
}

TEST(VmobaSelect, ReproducesAllNineGoldenSelections) {
  auto f = test::open_method_data("vmoba_subset.safetensors");
  ASSERT_TRUE(f);
  const Tensor q = test::get_f32(*f, "in.q"), k = test::get_f32(*f, "in.k");
  for (int c = 0; c < 9; ++c) {
    const nlohmann::json meta = nlohmann::json::parse(f->metadata().at(strfmt("case%d", c)));
    const int p = meta["part"].get<int>();
    const VmobaPartition part = vmoba_partition(kGrid, kBoxes[p]).value();
    const VmobaGates g = vmoba_gates(part, q.f32(), k.f32(), 480, 2, 64);
    VmobaSelection rule;
    rule.select = meta["select_mode"] == "topk" ? VmobaSelect::topk : VmobaSelect::threshold;
    rule.pool = meta["threshold_type"] == "query_head" ? VmobaPool::query_head : VmobaPool::head_global;
    rule.topk = meta["moba_topk"].get<int>();
    rule.threshold = meta["simsum_threshold"].get<double>();
    const std::vector<uint8_t> sel = vmoba_select(part, g, rule);
    test::expect_same_ints(std::vector<int64_t>(sel.begin(), sel.end()),
                           test::int_values(test::get_raw(*f, strfmt("case%d.out.selected", c))),
                           strfmt("case%d selected (%s)", c, meta.dump().c_str()));
  }
}

// Two chunks of two tokens and one of one, one head: gates set by hand.
struct HandCase {
  VmobaPartition part;
  VmobaGates gates;
  HandCase() {
    part.perm = {0, 1, 2, 3, 4};
    part.cu_chunk = {0, 2, 4, 5};
    part.chunk_of = {0, 0, 1, 1, 2};
    gates.C = 3;
    gates.NH = 1;
    gates.HD = 1;
    gates.Lv = 5;
    gates.gate.assign(15, 0.f);
  }
  void set(int c, int n, float g) { gates.gate[c * 5 + n] = g; }
  bool sel(const std::vector<uint8_t>& s, int c, int n) const { return s[c * 5 + n] != 0; }
};

TEST(VmobaSelect, HandMadeRules) {
  HandCase hc;
  // Query 0 (chunk 0): others 1 -> 5, 2 -> 3. Query 4 (chunk 2): others 0 -> -1, 1 -> 2.
  hc.set(0, 0, 1.f);
  hc.set(1, 0, 5.f);
  hc.set(2, 0, 3.f);
  hc.set(0, 4, -1.f);
  hc.set(1, 4, 2.f);
  hc.set(2, 4, 9.f);
  VmobaSelection topk;
  topk.topk = 2;  // self + the best other
  auto s = vmoba_select(hc.part, hc.gates, topk);
  EXPECT_TRUE(hc.sel(s, 0, 0) && hc.sel(s, 1, 0) && !hc.sel(s, 2, 0));
  EXPECT_TRUE(hc.sel(s, 2, 4) && hc.sel(s, 1, 4) && !hc.sel(s, 0, 4));
  topk.topk = 1;  // self only
  s = vmoba_select(hc.part, hc.gates, topk);
  EXPECT_EQ(std::accumulate(s.begin(), s.end(), 0), 5);
  topk.topk = 99;  // clamped to C: everything
  s = vmoba_select(hc.part, hc.gates, topk);
  EXPECT_EQ(std::accumulate(s.begin(), s.end(), 0), 15);

  // Threshold, query 4: normalised (0, 0.3, 1), self share 1/1.3 = 0.77 >= tau, need = 0, yet the best
  // other (chunk 1) is still taken: the reference always adds one non-self entry.
  VmobaSelection thr;
  thr.select = VmobaSelect::threshold;
  thr.threshold = 0.25;
  s = vmoba_select(hc.part, hc.gates, thr);
  EXPECT_TRUE(hc.sel(s, 2, 4) && hc.sel(s, 1, 4) && !hc.sel(s, 0, 4));
  // Query 0: normalised (0, 1, 0.5), self share 0; need 0.9·... : with tau = 0.9 both others are needed
  // (1/1.5 = 0.67 < 0.9), with tau = 0.5 one suffices.
  thr.threshold = 0.9;
  s = vmoba_select(hc.part, hc.gates, thr);
  EXPECT_TRUE(hc.sel(s, 1, 0) && hc.sel(s, 2, 0));
  thr.threshold = 0.5;
  s = vmoba_select(hc.part, hc.gates, thr);
  EXPECT_TRUE(hc.sel(s, 1, 0) && !hc.sel(s, 2, 0));
}

// The method's attention equals dense attention over self ∪ selected chunks (from its own recorded
// selection), on a grid whose token count is not a multiple of the 64-token blocks.
void check_method_against_reference(const nlohmann::json& config, int layer) {
  const VideoGrid grid{3, 5, 7};
  const int64_t L = grid.tokens();
  const int NH = 2, HD = 64;
  SCOPED_TRACE(strfmt("vmoba(grid=3x5x7, layer=%d, config=%s)", layer, config.dump().c_str()));
  const auto q = test::randn(static_cast<size_t>(L * NH * HD), 11 + layer);
  const auto k = test::randn(q.size(), 12 + layer);
  const auto v = test::randn(q.size(), 13 + layer);
  ModelInfo model;
  model.num_layers = 3;
  model.num_heads = NH;
  model.head_dim = HD;
  model.grid = grid;
  auto m = make_attention("vmoba", config, model);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  (*m)->set_record(true);
  AttentionCall call;
  call.grid = grid;
  call.layer = layer;
  call.num_layers = 3;
  std::vector<float> out(q.size(), NAN), lse(static_cast<size_t>(NH * L), NAN);
  ASSERT_TRUE((*m)->run(call, {q.data(), k.data(), v.data(), L, NH, HD}, {out.data(), lse.data()}).is_ok());
  const CallRecord& rec = (*m)->last_call();
  ASSERT_FALSE(rec.dense);
  const Tensor& sel = rec.extras.at("selected");  // [C, NH, L], rearranged queries
  const Tensor& perm = rec.extras.at("perm");
  const Tensor& cu = rec.extras.at("cu_chunk");
  const int C = static_cast<int>(sel.dim(0));
  std::vector<int> chunk_of_orig(static_cast<size_t>(L)), pos(static_cast<size_t>(L));
  for (int c = 0; c < C; ++c)
    for (int n = cu.data<int32_t>()[c]; n < cu.data<int32_t>()[c + 1]; ++n) {
      chunk_of_orig[perm.data<int32_t>()[n]] = c;
      pos[perm.data<int32_t>()[n]] = n;
    }
  std::vector<float> ref, ref_lse;
  int64_t kept = 0;
  auto keep = [&](int h, int64_t i, int64_t j) {
    return sel.data<uint8_t>()[(static_cast<int64_t>(chunk_of_orig[j]) * NH + h) * L + pos[i]] != 0;
  };
  for (int h = 0; h < NH; ++h)
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < L; ++j) kept += keep(h, i, j) ? 1 : 0;
  test::masked_attention_reference(&ref, &ref_lse, q.data(), k.data(), v.data(), L, NH, HD, keep);
  const test::Diff d = test::compare(out.data(), ref.data(), static_cast<int64_t>(out.size()));
  EXPECT_TRUE(d.finite) << "NaN/Inf or unwritten output at " << d.worst;
  EXPECT_LE(d.rel(), 1e-5) << "worst index " << d.worst;
  const test::Diff dl = test::compare(lse.data(), ref_lse.data(), NH * L);
  EXPECT_LE(dl.max_abs, 1e-5) << "lse worst index " << dl.worst;
  EXPECT_NEAR(rec.density, static_cast<double>(kept) / (NH * L * L), 1e-12);
  EXPECT_LT(rec.density, 1.0);
}

TEST(VmobaMethod, MatchesDenseMaskedAttentionOverSelectedChunks) {
  const nlohmann::json base = {{"preset", "none"}, {"chunks", {{"1d", 1}, {"2d", {2, 3}}, {"3d", {2, 2, 3}}}}};
  for (int layer = 0; layer < 3; ++layer) {
    nlohmann::json topk = base;
    topk["select"] = "topk";
    topk["topk"] = {2, 3, 4};
    check_method_against_reference(topk, layer);
    nlohmann::json qh = base;
    qh["select"] = "threshold";
    qh["threshold"] = 0.3;
    check_method_against_reference(qh, layer);
    nlohmann::json hg = qh;
    hg["pool"] = "head_global";
    check_method_against_reference(hg, layer);
    nlohmann::json tg = topk;
    tg["pool"] = "head_global";
    check_method_against_reference(tg, layer);
  }
}

TEST(VmobaMethod, PresetsAndErrors) {
  ModelInfo model;
  model.num_layers = 30;
  model.num_heads = 12;
  model.grid = {21, 30, 52};
  auto m = make_attention("vmoba", nullptr, model);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  const nlohmann::json d = (*m)->describe();
  EXPECT_EQ(d["chunks"]["2d"], nlohmann::json({5, 13}));
  EXPECT_EQ(d["chunks"]["3d"], nlohmann::json({7, 5, 13}));
  EXPECT_EQ(d["topk"], nlohmann::json({2, 6, 18}));
  EXPECT_DOUBLE_EQ(d["dense_step_fraction"].get<double>(), 0.25);
  model.grid = {21, 45, 80};
  m = make_attention("vmoba", nlohmann::json{{"chunks", {{"2d", {3, 4}}}}}, model);
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ((*m)->describe()["chunks"]["2d"], nlohmann::json({3, 4}));
  EXPECT_EQ((*m)->describe()["chunks"]["3d"], nlohmann::json({7, 15, 20}));  // the 720p preset's
  EXPECT_EQ((*m)->describe()["topk"], nlohmann::json({2, 10, 9}));

  const std::pair<nlohmann::json, const char*> bad[] = {
      {{{"topk", {0, 1, 1}}}, "\"topk\""},
      {{{"topk", {1, 2}}}, "\"topk\""},
      {{{"select", "best"}}, "must be one of: topk, threshold"},
      {{{"threshold", 0.0}}, "\"threshold\""},
      {{{"threshold", 1.5}}, "\"threshold\""},
      {{{"pool", "overall"}}, "must be one of: query_head, head_global"},
      {{{"chunks", {{"4d", 3}}}}, "\"chunks\""},
      {{{"chunks", {{"2d", {0, 3}}}}}, "\"chunks\""},
      {{{"chunk", 3}}, "unknown key(s) \"chunk\""},
  };
  for (const auto& [cfg, needle] : bad) {
    auto r = make_attention("vmoba", cfg, model);
    ASSERT_FALSE(r.is_ok()) << cfg.dump();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  }
}

TEST(VmobaMethod, RejectsTextTokens) {
  ModelInfo model;
  model.num_heads = 1;
  auto m = make_attention("vmoba", {{"preset", "none"}}, model);
  ASSERT_TRUE(m.is_ok());
  AttentionCall call;
  call.grid = {2, 2, 2};
  call.text_len = 3;
  std::vector<float> x(11 * 16, 0.1f), out(x.size());
  Status s = (*m)->run(call, {x.data(), x.data(), x.data(), 11, 1, 16}, {out.data(), nullptr});
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("text tokens"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace vdit::attn
