// `vdit forward t5` as a user runs it: reproduces the golden out.full, accepts ids/mask of other integer
// dtypes, and fails with a clear message (exit 1) on bad inputs. Runs only under the ctest test_text_cli,
// which sets VDIT_CLI to the built program; elsewhere these tests are reported as skipped.
#include <gtest/gtest.h>

#include "io/safetensors_writer.h"
#include "tests/text/text_test_util.h"

using namespace vdit;

namespace {

const std::string kWeights = test::text_data("t5_tiny_weights.safetensors");
const std::string kGolden = test::text_data("t5_tiny_golden.safetensors");

Tensor int_tensor(DType dtype, const std::vector<int64_t>& values) {
  auto f = Tensor::from_f32(std::vector<float>(values.begin(), values.end()), {static_cast<int64_t>(values.size())});
  return *f->to(dtype);
}

}  // namespace

TEST(ForwardT5Cli, ReproducesGoldenFullOutput) {
  VDIT_REQUIRE_CLI();
  test::TempDir dir;
  std::string out;
  const int rc = test::run_cli(
      "forward t5 --weights " + kWeights + " --inputs " + kGolden + " --out " + dir.file("out.safetensors"), &out);
  ASSERT_EQ(rc, 0) << out;
  auto got = open_tensor_file(dir.file("out.safetensors"));
  auto ref = open_tensor_file(kGolden);
  ASSERT_TRUE(got && ref);
  auto t = (*got)->tensor_f32("out");
  ASSERT_TRUE(t) << t.status().to_string();
  test::expect_close(*t, test::golden_f32(**ref, "out.full", {512, 64}), 1e-5, "vdit forward t5 out vs out.full");
}

TEST(ForwardT5Cli, AcceptsOtherIntegerDtypes) {
  VDIT_REQUIRE_CLI();
  test::TempDir dir;
  auto ref = open_tensor_file(kGolden);
  ASSERT_TRUE(ref);
  auto ids64 = (*ref)->tensor("in.ids");
  std::vector<int64_t> ids(ids64->data<int64_t>(), ids64->data<int64_t>() + 10);  // the 10 valid tokens
  for (DType dt : {DType::i32, DType::i16}) {
    ASSERT_TRUE(
        save_safetensors(dir.file("in.safetensors"),
                         {{"ids", int_tensor(dt, ids)}, {"mask", int_tensor(DType::u8, std::vector<int64_t>(10, 1))}})
            .is_ok());
    std::string out;
    ASSERT_EQ(test::run_cli("forward t5 --weights " + kWeights + " --inputs " + dir.file("in.safetensors") + " --out " +
                                dir.file("out.safetensors"),
                            &out),
              0)
        << out;
    auto got = open_tensor_file(dir.file("out.safetensors"));
    ASSERT_TRUE(got);
    test::expect_close(*(*got)->tensor_f32("out"), test::golden_f32(**ref, "out.trimmed", {10, 64}), 1e-5,
                       std::string("ids as ") + dtype_name(dt));
  }
}

TEST(ForwardT5Cli, BadInputsFailClearly) {
  VDIT_REQUIRE_CLI();
  test::TempDir dir;
  struct Case {
    const char* what;
    NamedTensors inputs;
    std::string weights;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"id out of range",
       {{"ids", int_tensor(DType::i64, {5, 1000, 1})}},
       kWeights,
       "ids[1] = 1000 is outside this encoder's vocabulary [0, 1000)"},
      {"mask length",
       {{"ids", int_tensor(DType::i64, {5, 6, 1})}, {"mask", int_tensor(DType::i64, {1, 1})}},
       kWeights,
       "mask has 2 entries but ids has 3"},
      {"float ids", {{"ids", *Tensor::from_f32({5, 1}, {2})}}, kWeights, "must be an integer tensor"},
      {"no ids", {{"tokens", int_tensor(DType::i64, {5, 1})}}, kWeights, "no tensor \"ids\""},
      {"DiT weights",
       {{"ids", int_tensor(DType::i64, {5, 1})}},
       test::data_path("wan_tiny/dit_tiny_weights.safetensors"),
       "not a UMT5/T5 text encoder checkpoint"},
  };
  for (const Case& c : cases) {
    ASSERT_TRUE(save_safetensors(dir.file("in.safetensors"), c.inputs).is_ok());
    std::string out;
    const int rc = test::run_cli("forward t5 --weights " + c.weights + " --inputs " + dir.file("in.safetensors") +
                                     " --out " + dir.file("out.safetensors"),
                                 &out);
    EXPECT_EQ(rc, 1) << c.what << ": " << out;
    EXPECT_NE(out.find("vdit: error: "), std::string::npos) << c.what << ": " << out;
    EXPECT_NE(out.find(c.message), std::string::npos) << c.what << ": " << out;
  }
}
