// The method goldens reproduced end to end through `vdit forward attention` (VMoBA's nine cases, DraftAttention,
// PARO's permutations and calibration case), invalid options failing with exit code 1 and a clear message,
// and `vdit calibrate paro --inputs` against the library calibration. `CliGoldens` reads the subset in
// tests/data/attention_methods; `FullGoldens` reads the full files from $VDIT_METHOD_GOLDENS (skipped, with
// the reason, when it is not set; the ctest entry test_attention_methods_full_goldens sets it).
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "attention/methods/paro_calibrate.h"
#include "attention/paro_plan.h"
#include "tests/attention_methods/methods_test_util.h"

namespace vdit::attn {
namespace {

struct Output {
  std::unique_ptr<TensorFile> file;
  Tensor get(const std::string& name) const { return test::get_raw(*file, name); }
  Tensor f32(const std::string& name) const { return test::get_f32(*file, name); }
};

// Runs `forward attention ARGS --inputs IN --out OUT` and opens OUT.
Output forward(const std::string& tag, const std::string& args, const std::string& inputs) {
  const std::string out = test::tmp_path(tag + "_out.safetensors");
  const test::CliRun r = test::run_vdit("forward attention " + args + " --inputs " + inputs + " --out " + out, tag);
  EXPECT_EQ(r.code, 0) << r.output;
  Output o;
  if (r.code == 0) o.file = test::open_file(out);
  return o;
}

// ---- VMoBA -------------------------------------------------------------------------------------------

void check_vmoba_case(const TensorFile& gold, int c, const std::string& o_name, int row_step) {
  const nlohmann::json meta = nlohmann::json::parse(gold.metadata().at(strfmt("case%d", c)));
  SCOPED_TRACE(strfmt("vmoba case %d: %s", c, meta.dump().c_str()));
  const int p = meta["part"].get<int>(), k = meta["moba_topk"].get<int>();
  const nlohmann::json cfg = {{"preset", "none"},
                              {"chunks", {{"1d", 1}, {"2d", {4, 5}}, {"3d", {2, 4, 5}}}},
                              {"select", meta["select_mode"]},
                              {"pool", meta["threshold_type"]},
                              {"topk", {k, k, k}},
                              {"threshold", meta["simsum_threshold"]},
                              {"record_gates", true}};
  const std::string in = test::write_qkv(strfmt("vmoba_in%d.safetensors", c), test::get_raw(gold, "in.q"),
                                         test::get_raw(gold, "in.k"), test::get_raw(gold, "in.v"));
  // Layer p uses partition p mod 3 = p.
  Output out = forward(strfmt("vmoba%d", c),
                       strfmt("--method vmoba --grid 6,8,10 --layer %d --num-layers 3 --attention-config %s", p,
                              test::quoted(cfg.dump()).c_str()),
                       in);
  ASSERT_TRUE(out.file);
  test::expect_same_ints(out.get("selected"), test::get_raw(gold, strfmt("case%d.out.selected", c)), "selected");
  test::expect_same_ints(out.get("perm"), test::get_raw(gold, strfmt("part%d.perm", p)), "perm");
  test::expect_same_ints(out.get("cu_chunk"), test::get_raw(gold, strfmt("part%d.cu_chunk", p)), "cu_chunk");
  test::expect_close(out.f32("gate"), test::get_f32(gold, strfmt("part%d.gate", p)), 1e-5, "gate");
  test::expect_close(out.f32("key_gate_weight"), test::get_f32(gold, strfmt("part%d.key_gate_weight", p)), 1e-5,
                     "key_gate_weight");
  test::expect_close(test::every_nth(out.f32("out"), 0, row_step), test::get_f32(gold, strfmt("case%d.out.%s", c,
                                                                                              o_name.c_str())),
                     1e-5, "o");
}

// ---- DraftAttention -------------------------------------------------------------------------------------

void check_draft_case(const TensorFile& gold, int c, const std::string& o_name, int row_step) {
  const nlohmann::json meta = nlohmann::json::parse(gold.metadata().at(strfmt("case%d", c)));
  SCOPED_TRACE(strfmt("draft case %d: %s", c, meta.dump().c_str()));
  const std::string pre = strfmt("case%d.", c);
  const std::string in = test::write_qkv(strfmt("draft_in%d.safetensors", c), test::get_raw(gold, pre + "in.q"),
                                         test::get_raw(gold, pre + "in.k"), test::get_raw(gold, pre + "in.v"));
  const nlohmann::json cfg = {{"preset", "none"}, {"sparsity", meta["sparsity_ratio"]}};
  Output out = forward(strfmt("draft%d", c),
                       strfmt("--method draft --grid %d,%d,%d --text %d --attention-config %s", meta["F"].get<int>(),
                              meta["h"].get<int>(), meta["w"].get<int>(), meta["text_len"].get<int>(),
                              test::quoted(cfg.dump()).c_str()),
                       in);
  ASSERT_TRUE(out.file);
  for (const char* name : {"block_mask", "mask_headwise", "reorg_idx", "restore_idx"}) {
    test::expect_same_ints(out.get(name), test::get_raw(gold, pre + "out." + name), name);
  }
  // The layout's permutation is the reorder, for every head.
  const std::vector<int64_t> perm = test::int_values(out.get("perm")), reorg = test::int_values(out.get("reorg_idx"));
  ASSERT_EQ(perm.size() % reorg.size(), 0u);
  for (size_t h = 0; h < perm.size() / reorg.size(); ++h) {
    test::expect_same_ints(std::vector<int64_t>(perm.begin() + h * reorg.size(), perm.begin() + (h + 1) * reorg.size()),
                           reorg, "perm");
  }
  for (const char* name : {"q_pooled", "k_pooled", "draft_map", "threshold"}) {
    test::expect_close(out.f32(name), test::get_f32(gold, pre + "out." + name), 1e-5, name);
  }
  test::expect_close(test::every_nth(out.f32("out"), 0, row_step), test::get_f32(gold, pre + "out." + o_name), 1e-5,
                     "o");
}

// ---- PARO -----------------------------------------------------------------------------------------------

// The golden calibration case: plan = the harness's sparse_plan (6 x 6 blocks; trailing tokens dense).
void check_paro_calib(const TensorFile& gold, const std::string& o_name, int row_step) {
  const Tensor sp = test::get_raw(gold, "calib.out.sparse_plan");  // [2, 3, 6, 6]
  ParoPlan plan;
  plan.groups = 2;
  plan.layers = 1;
  plan.heads = 3;
  plan.nq = 6;
  plan.grid = {4, 9, 12};
  plan.text_len = 8;
  plan.steps = 10;
  plan.order = {0, 2, 5};
  plan.block_mask = sp.reshape({2, 1, 3, 6, 6}).value();
  const std::string plan_path = test::tmp_path("paro_calib_plan.safetensors");
  ASSERT_TRUE(save_paro_plan(plan_path, plan).is_ok());
  const std::string in = test::write_qkv("paro_calib_in.safetensors", test::swap01(test::get_raw(gold, "calib.in.q")),
                                         test::swap01(test::get_raw(gold, "calib.in.k")),
                                         test::swap01(test::get_raw(gold, "calib.in.v")));
  // i_timestep 0.6 of 2 groups = group 1 = step 6 of 10.
  Output out = forward("paro_calib",
                       "--method paro --grid 4,9,12 --text 8 --text-first --layer 0 --num-layers 1 --step 6 --steps "
                       "10 --set plan=" + plan_path,
                       in);
  ASSERT_TRUE(out.file);
  test::expect_same_ints(out.get("paro_perm"), test::get_raw(gold, "calib.out.perm"), "perm");
  test::expect_same_ints(out.get("paro_block_mask"), test::get_raw(gold, "calib.out.block_mask_applied"),
                         "block_mask_applied");
  EXPECT_EQ(out.get("paro_group").data<int32_t>()[0], 1);
  const Tensor o_ref = test::get_f32(gold, "calib.out." + o_name);  // [3, rows, 64]
  test::expect_close(test::every_nth(out.f32("out"), 0, row_step), test::swap01(o_ref), 1e-5, "o_kernel");
}

// The six axis orders (one head each) through the CLI: permutations, inverses, and with an all-on mask the
// output equals dense attention.
void check_paro_orders(const TensorFile& gold) {
  ParoPlan plan;
  plan.heads = 6;
  plan.nq = 3;
  plan.grid = {4, 6, 8};
  plan.text_len = 6;
  plan.order = {0, 1, 2, 3, 4, 5};
  plan.block_mask = Tensor::zeros(DType::u8, {1, 1, 6, 3, 3}).value();
  std::fill_n(plan.block_mask.data<uint8_t>(), plan.block_mask.numel(), 1);
  const std::string plan_path = test::tmp_path("paro_orders_plan.safetensors");
  ASSERT_TRUE(save_paro_plan(plan_path, plan).is_ok());
  const size_t n = 198 * 6 * 16;
  Tensor q = Tensor::from_f32(test::randn(n, 1), {198, 6, 16}).value();
  Tensor k = Tensor::from_f32(test::randn(n, 2), {198, 6, 16}).value();
  Tensor v = Tensor::from_f32(test::randn(n, 3), {198, 6, 16}).value();
  const std::string in = test::write_qkv("paro_orders_in.safetensors", q, k, v);
  const std::string common = " --grid 4,6,8 --text 6 --text-first --num-layers 1";
  Output out = forward("paro_orders", "--method paro --set plan=" + plan_path + common, in);
  Output dense = forward("paro_orders_dense", "--method dense" + common, in);
  ASSERT_TRUE(out.file && dense.file);
  test::expect_same_ints(out.get("paro_perm"), test::get_raw(gold, "perm.out.perm"), "perm");
  test::expect_same_ints(out.get("paro_inv"), test::get_raw(gold, "perm.out.inv"), "inv");
  test::expect_close(out.f32("out"), dense.f32("out"), 1e-5, "all-on PARO vs dense");
}

// ---- tests ----------------------------------------------------------------------------------------------

TEST(CliGoldens, Vmoba) {
  auto gold = test::open_method_data("vmoba_subset.safetensors");
  ASSERT_TRUE(gold);
  for (int c = 0; c < 9; ++c) check_vmoba_case(*gold, c, "o_rows", 4);
}

TEST(CliGoldens, Draft) {
  auto gold = test::open_method_data("draft_subset.safetensors");
  ASSERT_TRUE(gold);
  check_draft_case(*gold, 1, "o_rows", 4);
}

TEST(CliGoldens, Paro) {
  auto gold = test::open_method_data("paro_subset.safetensors");
  ASSERT_TRUE(gold);
  check_paro_orders(*gold);
  check_paro_calib(*gold, "o_kernel_rows", 2);
}

std::string full_goldens() {
  const char* dir = std::getenv("VDIT_METHOD_GOLDENS");
  return dir ? dir : "";
}

#define VDIT_NEED_FULL_GOLDENS()                                                                             \
  if (full_goldens().empty()) {                                                                              \
    GTEST_SKIP() << "VDIT_METHOD_GOLDENS is not set (the ctest entry test_attention_methods_full_goldens "   \
                    "sets it to the folder of the full method goldens)";                                     \
  }                                                                                                          \
  if (!std::ifstream(full_goldens() + "/vmoba_goldens.safetensors")) {                                       \
    GTEST_SKIP() << "no method goldens in VDIT_METHOD_GOLDENS=" << full_goldens()                           \
                 << " (configure with -DVDIT_METHOD_GOLDENS_DIR=<folder> to run these)";                     \
  }

TEST(FullGoldens, Vmoba) {
  VDIT_NEED_FULL_GOLDENS();
  auto gold = test::open_file(full_goldens() + "/vmoba_goldens.safetensors");
  ASSERT_TRUE(gold);
  for (int c = 0; c < 9; ++c) check_vmoba_case(*gold, c, "o", 1);
}

TEST(FullGoldens, Draft) {
  VDIT_NEED_FULL_GOLDENS();
  auto gold = test::open_file(full_goldens() + "/draft_goldens.safetensors");
  ASSERT_TRUE(gold);
  for (int c = 0; c < 2; ++c) check_draft_case(*gold, c, "o", 1);
}

TEST(FullGoldens, Paro) {
  VDIT_NEED_FULL_GOLDENS();
  auto gold = test::open_file(full_goldens() + "/paro_goldens.safetensors");
  ASSERT_TRUE(gold);
  check_paro_orders(*gold);
  check_paro_calib(*gold, "o_kernel", 1);
}

TEST(MethodsCli, InvalidOptionsFailClearly) {
  Tensor x = Tensor::from_f32(test::randn(60 * 2 * 16, 4), {60, 2, 16}).value();
  const std::string in = test::write_qkv("bad_in.safetensors", x, x, x);
  const std::string out = " --out " + test::tmp_path("bad_out.safetensors") + " --inputs " + in;
  const std::string plan_path = test::tmp_path("bad_plan.safetensors");
  ParoPlan plan;
  plan.heads = 2;
  plan.layers = 4;
  plan.nq = 1;
  plan.grid = {3, 4, 5};
  plan.order = std::vector<int32_t>(8, 0);
  plan.block_mask = Tensor::zeros(DType::u8, {1, 4, 2, 1, 1}).value();
  ASSERT_TRUE(save_paro_plan(plan_path, plan).is_ok());
  const std::pair<std::string, std::string> cases[] = {
      {"--method draft --grid 3,4,5 --set sparsity=0", "key \"sparsity\" = 0: must be in (0, 1]"},
      {"--method draft --grid 3,4,5 --set sparsity=1.5", "must be in (0, 1]"},
      {"--method draft --grid 3,4,5 --set pool=[4,4]", "64 or 128 tokens"},
      {"--method vmoba --grid 3,4,5 --set topk=[2,0,1]", "\"topk\""},
      {"--method vmoba --grid 3,4,5 --set selection=topk", "unknown key(s) \"selection\""},
      {"--method vmoba --grid 3,4,5 --set threshold=0", "\"threshold\" = 0"},
      {"--method paro --grid 3,4,5", "needs a plan"},
      {"--method paro --grid 3,4,5 --num-layers 30 --set plan=" + plan_path, "the model has 30 layers"},
      {"--method paro --grid 3,5,4 --num-layers 4 --set plan=" + plan_path, "latent grid is 3x5x4"},
  };
  for (const auto& [args, needle] : cases) {
    const test::CliRun r = test::run_vdit("forward attention " + args + out, "bad");
    EXPECT_EQ(r.code, 1) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
  }
}

TEST(MethodsCli, CalibrateParoFromRecordedInputs) {
  const VideoGrid grid{8, 8, 8};
  const int NH = 3, HD = 32, S = 4;
  const std::vector<int> mode = {0, 1, 2};
  std::vector<std::vector<float>> steps;
  for (int s = 0; s < S; ++s) steps.push_back(test::clustered_qk(grid, NH, HD, mode, 500 + s));
  std::vector<float> all;
  for (const auto& s : steps) all.insert(all.end(), s.begin(), s.end());
  Tensor qk = Tensor::from_f32(all, {S, 512, NH, HD}).value();  // [S, L, NH, HD], q = k
  const std::string in = test::tmp_path("calib_in.safetensors");
  ASSERT_TRUE(save_safetensors(in, {{"layer0.q", qk}, {"layer0.k", qk}, {"layer1.q", qk}, {"layer1.k", qk}}).is_ok());
  const std::string plan_path = test::tmp_path("calib_plan.safetensors");
  test::CliRun r = test::run_vdit("calibrate paro --inputs " + in + " --out " + plan_path +
                                      " --grid 8,8,8 --density 0.5 --groups 2",
                                  "calibrate");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("2 layer(s) x 3 head(s), 2 group(s) over 4 steps"), std::string::npos) << r.output;
  auto plan = load_paro_plan(plan_path);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();

  // Same plan as the library calibration on the same calls.
  ParoCalibrationOptions o;
  o.grid = grid;
  o.layers = 2;
  o.heads = NH;
  o.groups = 2;
  o.num_steps = S;
  o.density = 0.5;
  auto lib = calibrate_paro_plan(o, [&](const ParoCallSink& sink) -> Status {
    for (int l = 0; l < 2; ++l)
      for (int s = 0; s < S; ++s) VDIT_TRY(sink({s, l, steps[s].data(), steps[s].data(), 512, NH, HD}));
    return Status::ok();
  });
  ASSERT_TRUE(lib.is_ok()) << lib.status().to_string();
  EXPECT_EQ(plan->order, lib->order);
  test::expect_same_ints(plan->block_mask, lib->block_mask, "block_mask");

  // The plan drives `forward attention --method paro`.
  Tensor x = Tensor::from_f32(steps[0], {512, NH, HD}).value();
  const std::string fin = test::write_qkv("calib_fwd_in.safetensors", x, x, x);
  Output out = forward("calib_fwd", "--method paro --grid 8,8,8 --num-layers 2 --layer 1 --step 3 --steps 4 --quality "
                                    "--set plan=" + plan_path,
                       fin);
  ASSERT_TRUE(out.file);
  const nlohmann::json stats = nlohmann::json::parse(out.file->metadata().at("stats"));
  EXPECT_GT(stats["summary"]["mean_recall"].get<double>(), 0.95) << stats.dump();

  // Bad requests.
  const std::string cal = "calibrate paro --inputs " + in + " --out " + plan_path;
  r = test::run_vdit(cal + " --grid 8,8,8 --density 1.5", "cal_bad");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("density 1.5 must be in (0, 1]"), std::string::npos) << r.output;
  r = test::run_vdit(cal + " --grid 8,8,4 --density 0.5", "cal_bad");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("expected [L, NH, HD] or [S, L, NH, HD] with L = 256"), std::string::npos) << r.output;
  r = test::run_vdit(cal + " --grid 8,8,8 --density 0.5 --groups 4 --steps 8", "cal_bad");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("has no calibration call"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace vdit::attn
