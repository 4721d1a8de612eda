// Runs `vdit forward vae` as a user would: the tiny golden latent must come back as out.video (and
// out.video_preclamp) to 1e-5; bad inputs must fail with exit code 1 and a message that names the problem.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "io/safetensors_writer.h"
#include "io/tensor_file.h"
#include "tests/harness/test_util.h"

namespace vdit {
namespace {

constexpr double kGoldenTol = 1e-5;

std::string tmp(const std::string& name) { return std::string(VDIT_BINARY_DIR) + "/test_tmp_vae_cli_" + name; }

struct CliRun {
  int code = -1;
  std::string output;  // stdout + stderr
};

CliRun vdit(const std::string& args) {
  const std::string log = tmp("log.txt");
  const std::string cmd = std::string(VDIT_BINARY_DIR) + "/bin/vdit " + args + " >" + log + " 2>&1";
  CliRun r;
  const int rc = std::system(cmd.c_str());
  r.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  return r;
}

Tensor golden(const std::string& name) {
  auto g = open_tensor_file(test::data_path("vae/vae_tiny_golden.safetensors")).value();
  Tensor t = g->tensor_f32(name).value();
  Shape s(t.shape().begin() + 1, t.shape().end());  // drop the batch of 1
  return t.reshape(s).value();
}

const std::string kWeights = test::data_path("vae/vae_tiny_decoder.safetensors");

TEST(VaeCli, ReproducesGoldenVideo) {
  ASSERT_TRUE(save_safetensors(tmp("z.safetensors"), {{"z", golden("in.z")}}).is_ok());
  CliRun r = vdit("forward vae --weights " + kWeights + " --inputs " + tmp("z.safetensors") + " --out " +
               tmp("out.safetensors") + " --preclamp --uint8");
  ASSERT_EQ(r.code, 0) << r.output;
  auto out = open_tensor_file(tmp("out.safetensors"));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  test::expect_close((*out)->tensor_f32("video").value(), golden("out.video"), kGoldenTol, "cli video");
  test::expect_close((*out)->tensor_f32("video_preclamp").value(), golden("out.video_preclamp"), kGoldenTol,
                     "cli video_preclamp");
  EXPECT_EQ(shape_str((*out)->find("video_uint8")->shape), "[3, 9, 32, 48]");

  // Tiled: same video.
  r = vdit("forward vae --weights " + kWeights + " --inputs " + tmp("z.safetensors") + " --out " +
           tmp("out_tiled.safetensors") + " --tile 2");
  ASSERT_EQ(r.code, 0) << r.output;
  auto tiled = open_tensor_file(tmp("out_tiled.safetensors"));
  ASSERT_TRUE(tiled.is_ok());
  test::expect_close((*tiled)->tensor_f32("video").value(), golden("out.video"), kGoldenTol, "cli tiled video");
}

TEST(VaeCli, BadInputsFailClearly) {
  // Wrong channel count.
  Tensor z15 = Tensor::zeros(DType::f32, {15, 2, 4, 6}).value();
  ASSERT_TRUE(save_safetensors(tmp("z15.safetensors"), {{"z", z15}}).is_ok());
  CliRun r = vdit("forward vae --weights " + kWeights + " --inputs " + tmp("z15.safetensors") + " --out " +
               tmp("bad.safetensors"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("expected [16, F, H, W]"), std::string::npos) << r.output;

  // No tensor named z.
  ASSERT_TRUE(save_safetensors(tmp("noz.safetensors"), {{"latent", z15}}).is_ok());
  r = vdit("forward vae --weights " + kWeights + " --inputs " + tmp("noz.safetensors") + " --out " +
           tmp("bad.safetensors"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("no tensor \"z\""), std::string::npos) << r.output;

  // Weights that are not a VAE.
  r = vdit("forward vae --weights " + tmp("z15.safetensors") + " --inputs " + tmp("z15.safetensors") + " --out " +
           tmp("bad.safetensors"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("not a Wan VAE"), std::string::npos) << r.output;

  // A missing weights file.
  r = vdit("forward vae --weights " + tmp("does_not_exist.safetensors") + " --inputs " + tmp("z15.safetensors") +
           " --out " + tmp("bad.safetensors"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("does_not_exist"), std::string::npos) << r.output;
  std::ifstream never(tmp("bad.safetensors"));
  EXPECT_FALSE(never.good()) << "a failed run must not leave an output file";
}

}  // namespace
}  // namespace vdit
