// The Radial and Re-ttention method goldens reproduced through `vdit forward attention` (the built vdit
// binary, run as a subprocess): masks exactly, outputs to max|Δ|/max|ref| <= 1e-5. Data: tests/data/attention
// (made by make_attention_data.py from /work/shared/method_goldens; Radial masks bit-packed, Re-ttention
// batch folded into heads). Also: the CLI's error messages for invalid options.
#include <cstdio>
#include <cstdlib>
#include <sys/wait.h>

#include <fstream>
#include <sstream>
#include <string>

#include "io/tensor_file.h"
#include "tests/attention/tolerances.h"
#include "tests/harness/test_util.h"

namespace vdit {
namespace {

std::string vdit_binary() { return std::string(VDIT_BINARY_DIR) + "/bin/vdit"; }

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "vdit_attn_" + name; }

// Runs the vdit CLI with `args`; returns the exit code, stderr in *err.
int run_vdit(const std::string& args, std::string* err = nullptr) {
  const std::string err_file = temp_path("stderr.txt");
  const std::string cmd = vdit_binary() + " " + args + " > /dev/null 2> " + err_file;
  const int rc = std::system(cmd.c_str());
  std::ifstream f(err_file);
  std::stringstream ss;
  ss << f.rdbuf();
  if (err) *err = ss.str();
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

class GoldenCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ifstream bin(vdit_binary());
    ASSERT_TRUE(bin.good()) << "the vdit binary is missing at " << vdit_binary() << ": build the `vdit` target first";
  }
};

std::unique_ptr<TensorFile> open_or_fail(const std::string& path) {
  auto f = open_tensor_file(path);
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  return f.is_ok() ? std::move(f).value() : nullptr;
}

// Unpacks a bit-packed golden mask row-wise (numpy packbits, bitorder little) to [n, n].
std::vector<uint8_t> unpack_mask(const TensorFile& f, const std::string& name, int64_t n) {
  auto t = f.tensor(name);
  EXPECT_TRUE(t.is_ok()) << name;
  if (!t.is_ok()) return {};
  const int64_t row_bytes = t->dim(1);
  EXPECT_EQ(t->dim(0), n) << name;
  std::vector<uint8_t> m(static_cast<size_t>(n * n));
  const uint8_t* p = t->data<uint8_t>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) m[i * n + j] = (p[i * row_bytes + j / 8] >> (j % 8)) & 1;
  return m;
}

void expect_mask_equal(const TensorFile& out, const std::vector<uint8_t>& want, int64_t n, const std::string& what) {
  auto bm = out.tensor("block_mask");
  ASSERT_TRUE(bm.is_ok()) << what << ": no block_mask in the output";
  ASSERT_EQ(shape_str(bm->shape()), shape_str({1, n, n})) << what;
  const uint8_t* got = bm->data<uint8_t>();
  int64_t diff = 0, first = -1;
  for (int64_t i = 0; i < n * n; ++i) {
    if (got[i] != want[static_cast<size_t>(i)]) {
      ++diff;
      if (first < 0) first = i;
    }
  }
  EXPECT_EQ(diff, 0) << what << ": " << diff << " blocks differ, first at (" << first / n << ", " << first % n << ")";
}

struct RadialMaskCase {
  int k;
  const char* grid;
  const char* extra;
  int64_t blocks;
  bool legacy;
};

TEST_F(GoldenCli, RadialMasksAllCasesBothCommits) {
  auto gold = open_or_fail(test::data_path("attention/radial_golden.safetensors"));
  ASSERT_TRUE(gold);
  const RadialMaskCase cases[] = {
      {0, "18,48,80", "--set decay=0.2", 540, false},
      {0, "18,48,80", "--set decay=0.2 --set mask_version=04560d1", 540, true},
      {1, "30,48,80", "--set decay=0.95 --family hunyuan --text 256", 902, false},
      {2, "8,16,16", "--set decay=0.5", 16, false},
      {3, "12,16,32", "--set decay=1.0", 48, false},
      {3, "12,16,32", "--set decay=1.0 --set mask_version=04560d1", 48, true},
      {4, "10,16,20", "--set decay=0.7", 25, false},
      {4, "10,16,20", "--set decay=0.7 --set mask_version=04560d1", 25, true},
  };
  for (const auto& c : cases) {
    const std::string what = strfmt("radial case%d%s", c.k, c.legacy ? " (04560d1)" : "");
    const std::string out = temp_path(strfmt("radial_%d_%d.safetensors", c.k, c.legacy ? 1 : 0));
    std::string err;
    const int rc = run_vdit(strfmt("forward attention --method radial --dense-steps 0 --dense-layers 0 --grid %s %s "
                                   "--plan-only --out %s",
                                   c.grid, c.extra, out.c_str()),
                            &err);
    ASSERT_EQ(rc, 0) << what << ": " << err;
    auto f = open_or_fail(out);
    ASSERT_TRUE(f);
    const auto want = unpack_mask(*gold, strfmt("case%d.block_mask%s_bits", c.k, c.legacy ? "_04560d1" : ""), c.blocks);
    expect_mask_equal(*f, want, c.blocks, what);
  }
}

TEST_F(GoldenCli, RadialCase2AttentionOutput) {
  const std::string out = temp_path("radial_case2_out.safetensors");
  std::string err;
  ASSERT_EQ(run_vdit("forward attention --method radial --set decay=0.5 --dense-steps 0 --dense-layers 0 "
                     "--grid 8,16,16 --layer 3 --step 20 --inputs " +
                         test::data_path("attention/radial_case2_in.safetensors") + " --out " + out,
                     &err),
            0)
      << err;
  auto f = open_or_fail(out);
  auto gold = open_or_fail(test::data_path("attention/radial_golden.safetensors"));
  ASSERT_TRUE(f && gold);
  expect_mask_equal(*f, unpack_mask(*gold, "case2.block_mask_bits", 16), 16, "radial case2");
  auto o = f->tensor_f32("out");
  auto ref = gold->tensor_f32("case2.o");
  ASSERT_TRUE(o.is_ok() && ref.is_ok());
  test::expect_close(*o, *ref, test::tol::kGoldenOutput, "radial case2 out");
  EXPECT_EQ(f->metadata().at("density"), "0.90625");
}

TEST_F(GoldenCli, RettentionCachingAndSparseSteps) {
  auto gold = open_or_fail(test::data_path("attention/rettention_golden.safetensors"));
  ASSERT_TRUE(gold);
  const struct {
    int k;
    int half_width;
    const char* grid;
  } cases[] = {{0, 4, "1,16,16"}, {1, 5, "1,10,10"}};
  for (const auto& c : cases) {
    const std::string what = strfmt("rettention case%d", c.k);
    const std::string out = temp_path(strfmt("rettention_%d.safetensors", c.k));
    std::string err;
    const int rc = run_vdit(
        strfmt("forward attention --method rettention --attention-config "
               "'{\"half_width\": %d, \"full_steps\": 5, \"cache_every\": 5, \"lambda\": 0.04}' --grid %s --step 5 "
               "--element-mask --inputs %s --out %s",
               c.half_width, c.grid, test::data_path(strfmt("attention/rettention_case%d_in.safetensors", c.k)).c_str(),
               out.c_str()),
        &err);
    ASSERT_EQ(rc, 0) << what << ": " << err;
    auto f = open_or_fail(out);
    ASSERT_TRUE(f);
    // Token mask, exactly, for every step and head.
    auto em = f->tensor("element_mask");
    auto gm = gold->tensor(strfmt("case%d.mask", c.k));
    ASSERT_TRUE(em.is_ok() && gm.is_ok()) << what;
    const int64_t N = gm->dim(0), reps = em->numel() / (N * N);
    ASSERT_EQ(em->numel(), reps * N * N);
    int64_t diff = 0;
    for (int64_t r = 0; r < reps; ++r)
      for (int64_t i = 0; i < N * N; ++i) diff += em->data<uint8_t>()[r * N * N + i] != gm->data<uint8_t>()[i];
    EXPECT_EQ(diff, 0) << what << ": element mask differs in " << diff << " places";
    // Outputs of the caching step and both sparse steps, ρ after each step, the residual R.
    auto o = f->tensor_f32("out");
    auto ref = gold->tensor_f32(strfmt("case%d.o", c.k));
    ASSERT_TRUE(o.is_ok() && ref.is_ok());
    test::expect_close(*o, *ref, test::tol::kGoldenOutput, what + " out (steps 5, 6, 7)");
    auto rho = f->tensor_f32("rho");
    auto rho_ref = gold->tensor_f32(strfmt("case%d.rho", c.k));
    ASSERT_TRUE(rho.is_ok() && rho_ref.is_ok());
    test::expect_close(*rho, *rho_ref, test::tol::kGoldenRho, what + " rho");
    auto R = f->tensor_f32("residual.step5");
    auto R_ref = gold->tensor_f32(strfmt("case%d.R", c.k));
    ASSERT_TRUE(R.is_ok() && R_ref.is_ok());
    test::expect_close(*R, *R_ref, test::tol::kGoldenOutput, what + " residual R");
  }
}

TEST_F(GoldenCli, InvalidOptionsGiveClearErrors) {
  const std::string in = test::data_path("attention/radial_case2_in.safetensors");
  const std::string out = temp_path("err.safetensors");
  const std::string base = " --grid 8,16,16 --inputs " + in + " --out " + out;
  const struct {
    std::string args;
    std::string expect;
  } cases[] = {
      {"forward attention --method nosuch" + base, "unknown attention method \"nosuch\"; available: "},
      {"forward attention --method radial --set decai=0.5" + base, "unknown key(s) \"decai\""},
      {"forward attention --method radial --set decay=-1" + base, "\"decay\" = -1"},
      {"forward attention --method rettention --set window_fraction=0" + base, "must be in (0, 1]"},
      {"forward attention --method rettention --set window_fraction=1.5" + base, "must be in (0, 1]"},
      {"forward attention --method radial --block 96" + base, "must be 64 or 128"},
      {"forward attention --method radial --attention-config '{\"decay\": ' " + base, "not valid JSON"},
      {"forward attention --method radial --attention-config /nonexistent.json" + base, "cannot be opened"},
      {"forward attention --method radial --grid 8,16,15 --inputs " + in + " --out " + out, "--grid 8,16,15"},
      {"forward attention --method radial --device cuda" + base, "not built yet"},
  };
  for (const auto& c : cases) {
    std::string err;
    const int rc = run_vdit(c.args, &err);
    EXPECT_NE(rc, 0) << c.args;
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.args << "\nstderr: " << err << "\nexpected: " << c.expect;
  }
}

}  // namespace
}  // namespace vdit
