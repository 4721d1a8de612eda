// `vdit forward dit` end to end: the CLI binary run on the golden inputs (tests/data/wan_tiny) must write
// `out` equal to the official cond.out within 1e-5 (max|Δ|/max|ref|; fp32 vs the fp32 golden, whose own
// CPU-vs-GPU spread is 7.6e-7), for every timestep dtype; bad inputs, weights of another model and
// --device cuda must exit 1 with a message that names the problem.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dit/core/device_buffer.h"
#include "io/safetensors_writer.h"
#include "io/tensor_file.h"
#include "tests/harness/test_util.h"

using namespace vdit;
namespace fs = std::filesystem;

namespace {

constexpr double kOutTol = 1e-5;

struct CliRun {
  int rc = -1;
  std::string err;
};

fs::path scratch() {
  fs::path d = fs::path(VDIT_BINARY_DIR) / "test_tmp_cli_forward_dit";
  fs::create_directories(d);
  return d;
}

CliRun run_cli(const std::string& args) {
  const fs::path err = scratch() / "stderr.txt";
  const std::string cmd = std::string(VDIT_CLI_PATH) + " " + args + " 2> " + err.string();
  int status = std::system(cmd.c_str());
  CliRun r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream f(err);
  std::stringstream ss;
  ss << f.rdbuf();
  r.err = ss.str();
  if (WIFEXITED(status) && WEXITSTATUS(status) > 128) {  // the shell reports a signal as 128 + N
    r.err += "[vdit was killed by signal " + std::to_string(WEXITSTATUS(status) - 128) + ": " + cmd + "]";
  }
  return r;
}

std::unique_ptr<TensorFile> golden() {
  auto f = open_tensor_file(test::data_path("wan_tiny/dit_tiny_golden.safetensors"));
  EXPECT_TRUE(f) << f.status().to_string();
  return std::move(*f);
}

// Writes an inputs file; `t` is stored with `t_dtype`.
std::string write_inputs(const std::string& name, const Tensor& x, double t, DType t_dtype, const Tensor& context) {
  const fs::path p = scratch() / (name + ".safetensors");
  Tensor tt;
  if (t_dtype == DType::i64) {
    tt = *Tensor::create(DType::i64, {1});
    tt.data<int64_t>()[0] = static_cast<int64_t>(t);
  } else if (t_dtype == DType::f64) {
    tt = *Tensor::create(DType::f64, {1});
    tt.data<double>()[0] = t;
  } else {
    tt = *Tensor::from_f32({static_cast<float>(t)}, {1})->to(t_dtype);
  }
  EXPECT_TRUE(save_safetensors(p.string(), {{"x", x}, {"t", tt}, {"context", context}}).is_ok());
  return p.string();
}

std::string weights() { return test::data_path("wan_tiny/dit_tiny_weights.safetensors"); }

}  // namespace

TEST(CliForwardDit, ReproducesGoldenCondOutForEveryTimestepDtype) {
  auto g = golden();
  const Tensor x = *g->tensor_f32("in.x");
  const Tensor ctx = *g->tensor_f32("in.context_cond");
  const Tensor ref = *g->tensor_f32("cond.out");
  for (DType dt : {DType::i64, DType::i32, DType::f32, DType::f64, DType::f16, DType::bf16}) {
    const double t = dt == DType::bf16 ? 936.0 : 937.0;  // bf16 cannot hold 937 (spacing 4 there); 936 it can
    const std::string in = write_inputs(std::string("in_") + dtype_name(dt), x, t, dt, ctx);
    const std::string out = (scratch() / (std::string("out_") + dtype_name(dt) + ".safetensors")).string();
    CliRun r = run_cli("forward dit --weights " + weights() + " --inputs " + in + " --out " + out);
    ASSERT_EQ(r.rc, 0) << dtype_name(dt) << ": " << r.err;
    auto f = open_tensor_file(out);
    ASSERT_TRUE(f) << f.status().to_string();
    auto got = (*f)->tensor_f32("out");
    ASSERT_TRUE(got) << got.status().to_string();
    EXPECT_EQ((*f)->find("out")->dtype, DType::f32);
    if (t == 937.0) {
      test::expect_close(*got, ref, kOutTol, std::string("cli out, t as ") + dtype_name(dt));
    } else {
      EXPECT_EQ(shape_str(got->shape()), shape_str(ref.shape()));
      EXPECT_GT(test::compare(got->f32(), ref.f32(), ref.numel()).rel(), 1e-4) << "t=936 must differ from t=937";
    }
  }
}

TEST(CliForwardDit, BadInputsExitWithClearMessages) {
  auto g = golden();
  const Tensor x = *g->tensor_f32("in.x");
  const Tensor ctx = *g->tensor_f32("in.context_cond");
  const std::string out = (scratch() / "bad_out.safetensors").string();
  struct Case {
    std::string name, inputs, weights_path, extra, expect;
  };
  std::vector<Case> cases = {
      {"x channels", write_inputs("x_ch", *Tensor::zeros(DType::f32, {15, 3, 8, 12}), 937, DType::i64, ctx), weights(),
       "", "must be [16, F, H, W]"},
      {"x odd width", write_inputs("x_w", *Tensor::zeros(DType::f32, {16, 3, 8, 11}), 937, DType::i64, ctx), weights(),
       "", "multiples of the patch size"},
      {"x rank", write_inputs("x_rank", *Tensor::zeros(DType::f32, {16, 96}), 937, DType::i64, ctx), weights(), "",
       "\"x\" must be [in_dim, F, H, W]"},
      {"t negative", write_inputs("t_neg", x, -1, DType::i64, ctx), weights(), "", "outside [0, 1000]"},
      {"t too large", write_inputs("t_big", x, 1001, DType::f32, ctx), weights(), "", "outside [0, 1000]"},
      {"t fractional", write_inputs("t_frac", x, 937.5, DType::f64, ctx), weights(), "", "not an integer"},
      {"context width", write_inputs("ctx_w", x, 937, DType::i64, *Tensor::zeros(DType::f32, {7, 63})), weights(), "",
       "[Lc, 64]"},
      {"context too long", write_inputs("ctx_l", x, 937, DType::i64, *Tensor::zeros(DType::f32, {513, 64})), weights(),
       "", "more than the model's text_len 512"},
      {"missing weights", write_inputs("ok", x, 937, DType::i64, ctx), "/nonexistent/w.safetensors", "",
       "no such file or directory"},
  };
  if (cuda_device_count() == 0) {  // with a GPU, --device cuda runs (tests/cuda_model checks the result)
    cases.push_back({"cuda", write_inputs("ok", x, 937, DType::i64, ctx), weights(), "--device cuda",
                     "no CUDA device is visible"});
  }
  for (const Case& c : cases) {
    CliRun r =
        run_cli("forward dit --weights " + c.weights_path + " --inputs " + c.inputs + " --out " + out + " " + c.extra);
    EXPECT_EQ(r.rc, 1) << c.name << ": " << r.err;
    EXPECT_NE(r.err.find("vdit: error:"), std::string::npos) << c.name << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.name << ": expected \"" << c.expect << "\" in: " << r.err;
  }
  // A file without `t` names what is missing and what the file holds.
  const fs::path no_t = scratch() / "no_t.safetensors";
  ASSERT_TRUE(save_safetensors(no_t.string(), {{"x", x}, {"context", ctx}}).is_ok());
  CliRun r = run_cli("forward dit --weights " + weights() + " --inputs " + no_t.string() + " --out " + out);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("no tensor \"t\""), std::string::npos) << r.err;
}

TEST(CliForwardDit, WeightsOfAnotherModelAreRefused) {
  auto g = golden();
  const std::string in = write_inputs("ok", *g->tensor_f32("in.x"), 937, DType::i64, *g->tensor_f32("in.context_cond"));
  // VAE- and T5-like files: the real key names of the tiny VAE/T5 (first tensors of each), tiny data.
  const std::vector<std::pair<std::string, std::vector<std::string>>> models = {
      {"VAE", {"conv1.weight", "conv2.weight", "decoder.conv1.weight", "decoder.head.0.gamma", "encoder.conv1.weight"}},
      {"T5",
       {"token_embedding.weight", "blocks.0.attn.q.weight", "blocks.0.pos_embedding.embedding.weight", "norm.weight"}},
  };
  for (const auto& [kind, names] : models) {
    NamedTensors ts;
    for (const auto& n : names) ts.emplace_back(n, *Tensor::zeros(DType::f32, {2}));
    const fs::path w = scratch() / (kind + "_weights.safetensors");
    ASSERT_TRUE(save_safetensors(w.string(), ts).is_ok());
    CliRun r = run_cli("forward dit --weights " + w.string() + " --inputs " + in + " --out " +
                       (scratch() / "other_out.safetensors").string());
    EXPECT_EQ(r.rc, 1) << kind << ": " << r.err;
    EXPECT_NE(r.err.find("not a Wan2.1 DiT"), std::string::npos) << kind << ": " << r.err;
    EXPECT_NE(r.err.find(kind), std::string::npos) << kind << ": " << r.err;
  }
}
