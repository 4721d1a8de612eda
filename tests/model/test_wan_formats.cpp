// Loading the tiny DiT from every supported container and layout, written at test time from the golden
// weights: diffusers names in a sharded index under transformer/, official shards without an index plus
// config.json, our built-in dit.safetensors, bf16/f16 storage. Each must reproduce the golden (or, for
// bf16/f16, the same model with the rounded weights stored as f32, bit for bit). Also: clear errors for bad
// inputs (shapes, timestep range, context), weights of another model, and --device cuda.
//
// Tolerances: kStageTol = 1e-5 as in test_wan_golden.cpp (fp32 against the fp32 golden's cond.out, whose
// own spread is 7.6e-7); converted weights are compared with 0 (same f32 values, same code path).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "attention/attention.h"
#include "dit/core/device_buffer.h"
#include "dit/model/wan_dit.h"
#include "dit/model/wan_names.h"
#include "io/safetensors_writer.h"
#include "io/tensor_file.h"
#include "tests/harness/test_util.h"

using namespace vdit;
using namespace vdit::model;
namespace fs = std::filesystem;

namespace {

constexpr double kStageTol = 1e-5;

const std::string kTinyWeights = "wan_tiny/dit_tiny_weights.safetensors";

fs::path scratch_dir(const std::string& name) {
  fs::path d = fs::path(VDIT_BINARY_DIR) / "test_tmp_model" / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::unique_ptr<TensorFile> open_data(const std::string& name) {
  auto f = open_tensor_file(test::data_path(name));
  EXPECT_TRUE(f) << f.status().to_string();
  return f ? std::move(*f) : nullptr;
}

// The tiny weights renamed to `layout` and converted to `dtype`.
NamedTensors tiny_tensors(WanLayout layout, DType dtype) {
  auto f = open_data(kTinyWeights);
  NamedTensors out;
  for (const TensorEntry& e : f->entries()) {
    auto t = f->tensor(e.name);
    auto c = t->to(dtype);
    EXPECT_TRUE(c);
    out.emplace_back(wan_tensor_name(e.name, layout), *c);
  }
  return out;
}

// Writes `tensors` as two shards (+ an index when `index`); returns the shard/index paths.
void write_shards(const fs::path& dir, const NamedTensors& tensors, bool index) {
  NamedTensors a(tensors.begin(), tensors.begin() + static_cast<long>(tensors.size() / 2));
  NamedTensors b(tensors.begin() + static_cast<long>(tensors.size() / 2), tensors.end());
  const std::string s1 = "diffusion_pytorch_model-00001-of-00002.safetensors";
  const std::string s2 = "diffusion_pytorch_model-00002-of-00002.safetensors";
  ASSERT_TRUE(save_safetensors((dir / s1).string(), a).is_ok());
  ASSERT_TRUE(save_safetensors((dir / s2).string(), b).is_ok());
  if (!index) return;
  nlohmann::json j;
  j["metadata"] = {{"total_size", 0}};
  for (const auto& [n, t] : a) j["weight_map"][n] = s1;
  for (const auto& [n, t] : b) j["weight_map"][n] = s2;
  std::ofstream(dir / "diffusion_pytorch_model.safetensors.index.json") << j.dump();
}

const char* kOfficialConfig = R"({"_class_name": "WanModel", "dim": 256, "eps": 1e-06, "ffn_dim": 512, "freq_dim": 256,
  "in_dim": 16, "model_type": "t2v", "num_heads": 2, "num_layers": 2, "out_dim": 16, "text_len": 512})";

struct Golden {
  std::unique_ptr<TensorFile> file = open_data("wan_tiny/dit_tiny_golden.safetensors");
  Tensor x = *file->tensor_f32("in.x");
  Tensor context = *file->tensor_f32("in.context_cond");
  Tensor out = *file->tensor_f32("cond.out");
};

Result<Tensor> run(const WanDit& dit, const Tensor& x, const Tensor& context, int64_t t = 937) {
  VDIT_ASSIGN(auto text, dit.prepare_text(context));
  auto attention = attn::make_dense_cpu_attention();
  Tensor out;
  VDIT_TRY(dit.forward(&out, x, t, *text, *attention));
  return out;
}

void expect_reproduces_golden(const std::string& path, const std::string& expect_layout,
                              const std::string& expect_dir) {
  Golden g;
  WanDitSource src;
  auto dit = load_wan_dit(path, {}, &src);
  ASSERT_TRUE(dit) << path << ": " << dit.status().to_string();
  EXPECT_EQ(src.layout, expect_layout) << path;
  EXPECT_EQ(src.directory, expect_dir) << path;
  auto out = run(**dit, g.x, g.context);
  ASSERT_TRUE(out) << out.status().to_string();
  test::expect_close(*out, g.out, kStageTol, path);
}

void expect_error(const Status& st, StatusCode code, const std::vector<std::string>& parts, const std::string& what) {
  EXPECT_EQ(st.code(), code) << what << ": " << st.to_string();
  for (const auto& p : parts)
    EXPECT_NE(st.message().find(p), std::string::npos) << what << ": \"" << p << "\" not in: " << st.message();
}

}  // namespace

TEST(WanFormats, SingleOfficialFileWithMetadataConfig) {
  expect_reproduces_golden(test::data_path(kTinyWeights), "official", "file");
}

TEST(WanFormats, DiffusersDirectoryWithShardedIndex) {
  fs::path root = scratch_dir("diffusers");
  fs::create_directories(root / "transformer");
  write_shards(root / "transformer", tiny_tensors(WanLayout::diffusers, DType::f32), /*index=*/true);
  std::ofstream(root / "transformer" / "config.json")
      << R"({"_class_name": "WanTransformer3DModel", "attention_head_dim": 128, "num_attention_heads": 2,
             "in_channels": 16, "out_channels": 16, "ffn_dim": 512, "freq_dim": 256, "num_layers": 2, "text_dim": 64,
             "patch_size": [1, 2, 2], "qk_norm": "rms_norm_across_heads", "cross_attn_norm": true, "eps": 1e-06,
             "image_dim": null, "added_kv_proj_dim": null})";
  std::ofstream(root / "model_index.json") << R"({"_class_name": "WanPipeline"})";
  expect_reproduces_golden(root.string(), "diffusers", "diffusers directory");
  // The index file itself is accepted too.
  expect_reproduces_golden((root / "transformer" / "diffusion_pytorch_model.safetensors.index.json").string(),
                           "diffusers", "file");
}

TEST(WanFormats, OfficialDirectoryWithIndexlessShardsAndConfig) {
  fs::path root = scratch_dir("official");
  write_shards(root, tiny_tensors(WanLayout::official, DType::f32), /*index=*/false);
  std::ofstream(root / "config.json") << kOfficialConfig;
  expect_reproduces_golden(root.string(), "official", "official directory");
}

TEST(WanFormats, BuiltInDirectoryAndHalfPrecisionStorage) {
  // bf16 and f16 files must load as exactly the model whose f32 weights are those rounded values.
  Golden g;
  for (DType dt : {DType::bf16, DType::f16}) {
    const std::string name = dtype_name(dt);
    fs::path half_dir = scratch_dir("builtin_" + name);
    ASSERT_TRUE(
        save_safetensors((half_dir / "dit.safetensors").string(), tiny_tensors(WanLayout::official, dt)).is_ok());
    std::ofstream(half_dir / "config.json") << kOfficialConfig;
    NamedTensors rounded = tiny_tensors(WanLayout::official, dt);
    for (auto& [n, t] : rounded) t = *t.to(DType::f32);
    fs::path ref_dir = scratch_dir("rounded_f32_" + name);
    ASSERT_TRUE(save_safetensors((ref_dir / "model.safetensors").string(), rounded).is_ok());
    std::ofstream(ref_dir / "config.json") << kOfficialConfig;

    WanDitSource src;
    auto half = load_wan_dit(half_dir.string(), {}, &src);
    ASSERT_TRUE(half) << half.status().to_string();
    EXPECT_EQ(src.directory, "built-in directory");
    EXPECT_EQ(src.config_from, "config.json");
    auto ref = load_wan_dit((ref_dir / "model.safetensors").string());
    ASSERT_TRUE(ref) << ref.status().to_string();
    auto a = run(**half, g.x, g.context);
    auto b = run(**ref, g.x, g.context);
    ASSERT_TRUE(a && b);
    test::expect_close(*a, *b, 0.0, name + " storage vs rounded f32");
    // And it is still close to the f32 golden (the rounding is visible but small).
    test::Diff d = test::compare(a->f32(), g.out.f32(), a->numel());
    EXPECT_GT(d.rel(), 0.0) << name << " weights were not rounded";
    EXPECT_LT(d.rel(), dt == DType::bf16 ? 5e-2 : 5e-3) << name;
  }
}

TEST(WanFormats, ConfigJsonTextLenAndConflicts) {
  Golden g;
  fs::path root = scratch_dir("textlen");
  ASSERT_TRUE(
      save_safetensors((root / "dit.safetensors").string(), tiny_tensors(WanLayout::official, DType::f32)).is_ok());
  std::ofstream(root / "config.json") << R"({"text_len": 16, "num_heads": 2})";
  auto dit = load_wan_dit(root.string());
  ASSERT_TRUE(dit) << dit.status().to_string();
  EXPECT_EQ((*dit)->config().text_len, 16);
  auto out = run(**dit, g.x, g.context);
  ASSERT_TRUE(out) << out.status().to_string();
  // Padding to 16 instead of 512 changes the cross-attention, so the output must differ from the golden.
  EXPECT_GT(test::compare(out->f32(), g.out.f32(), out->numel()).rel(), 1e-4);
  auto long_ctx = Tensor::zeros(DType::f32, {17, 64});
  expect_error((*dit)->prepare_text(*long_ctx).status(), StatusCode::invalid_argument, {"17 tokens", "text_len 16"},
               "context too long");

  std::ofstream(root / "config.json") << R"({"dim": 512, "num_heads": 4})";
  expect_error(load_wan_dit(root.string()).status(), StatusCode::format_error,
               {"config.json", "dim = 512", "dim = 256"}, "config conflict");
}

TEST(WanFormats, BadInputsGiveClearErrors) {
  Golden g;
  auto dit = load_wan_dit(test::data_path(kTinyWeights));
  ASSERT_TRUE(dit) << dit.status().to_string();
  auto text = (*dit)->prepare_text(g.context);
  ASSERT_TRUE(text);
  auto attention = attn::make_dense_cpu_attention();
  Tensor out;
  auto fwd = [&](const Tensor& x, int64_t t) { return (*dit)->forward(&out, x, t, **text, *attention); };
  expect_error(fwd(*Tensor::zeros(DType::f32, {15, 3, 8, 12}), 937), StatusCode::invalid_argument,
               {"[16, F, H, W]", "[15, 3, 8, 12]"}, "channels");
  expect_error(fwd(*Tensor::zeros(DType::f32, {16, 3, 7, 12}), 937), StatusCode::invalid_argument,
               {"multiples of the patch size"}, "odd H");
  expect_error(fwd(*Tensor::zeros(DType::f32, {16, 8, 12}), 937), StatusCode::invalid_argument, {"[16, F, H, W]"},
               "rank");
  expect_error(fwd(*Tensor::zeros(DType::f32, {16, 1, 2 * 1025, 2}), 937), StatusCode::invalid_argument,
               {"at most 1024"}, "grid");
  expect_error(fwd(*Tensor::zeros(DType::f64, {16, 3, 8, 12}), 937), StatusCode::invalid_argument, {"must be f32"},
               "dtype");
  expect_error(fwd(g.x, -1), StatusCode::invalid_argument, {"timestep -1", "[0, 1000]"}, "t < 0");
  expect_error(fwd(g.x, 1001), StatusCode::invalid_argument, {"timestep 1001", "[0, 1000]"}, "t > 1000");
  EXPECT_TRUE(fwd(g.x, 0).is_ok());
  EXPECT_TRUE(fwd(g.x, 1000).is_ok());
  expect_error((*dit)->prepare_text(*Tensor::zeros(DType::f32, {7, 63})).status(), StatusCode::invalid_argument,
               {"[Lc, 64]", "[7, 63]"}, "context width");
  expect_error((*dit)->prepare_text(*Tensor::zeros(DType::f32, {513, 64})).status(), StatusCode::invalid_argument,
               {"513 tokens", "text_len 512"}, "context length");
  // An empty context is all padding, which is valid.
  EXPECT_TRUE((*dit)->prepare_text(*Tensor::zeros(DType::f32, {0, 64})));
  // Conditioning from another model instance is refused.
  auto other = load_wan_dit(test::data_path(kTinyWeights));
  ASSERT_TRUE(other);
  auto other_text = (*other)->prepare_text(g.context);
  expect_error((*dit)->forward(&out, g.x, 937, **other_text, *attention), StatusCode::invalid_argument,
               {"another model"}, "foreign conditioning");
}

TEST(WanFormats, OtherModelsMissingFilesAndCuda) {
  // Files with the real VAE and T5 key sets (tiny shapes; only the names matter).
  for (const char* which : {"manifest_vae.json", "manifest_t5_umt5_xxl_enc.json"}) {
    std::ifstream f(test::data_path(std::string("manifests/") + which));
    auto j = nlohmann::json::parse(f);
    NamedTensors ts;
    for (auto it = j["tensors"].begin(); it != j["tensors"].end(); ++it)
      ts.emplace_back(it.key(), *Tensor::zeros(DType::f32, {1}));
    const fs::path p = scratch_dir("other") / (std::string(which) + ".safetensors");
    ASSERT_TRUE(save_safetensors(p.string(), ts).is_ok());
    expect_error(load_wan_dit(p.string()).status(), StatusCode::format_error,
                 {p.string(), "not a Wan2.1 DiT", std::string(which) == "manifest_vae.json" ? "VAE" : "T5"}, which);
  }
  expect_error(load_wan_dit("/nonexistent/dit.safetensors").status(), StatusCode::not_found,
               {"/nonexistent/dit.safetensors"}, "missing file");
  expect_error(load_wan_dit(scratch_dir("empty").string()).status(), StatusCode::not_found,
               {"dit.safetensors", "diffusion_pytorch_model", "transformer/"}, "empty dir");
  WanDitLoadOptions cuda;
  cuda.device = DitDevice::cuda;
  if (cuda_device_count() == 0) {  // with a GPU the CUDA backend loads (tests/cuda_model checks it)
    expect_error(load_wan_dit(test::data_path(kTinyWeights), cuda).status(), StatusCode::unsupported,
                 {"CUDA", "cpu"}, "cuda");
  }
  // Weights with a tensor removed name it.
  NamedTensors ts = tiny_tensors(WanLayout::official, DType::f32);
  ts.erase(std::remove_if(ts.begin(), ts.end(), [](const auto& p) { return p.first == "blocks.1.ffn.2.bias"; }),
           ts.end());
  const fs::path p = scratch_dir("missing") / "w.safetensors";
  ASSERT_TRUE(save_safetensors(p.string(), ts).is_ok());
  expect_error(load_wan_dit(p.string()).status(), StatusCode::format_error, {"missing tensor blocks.1.ffn.2.bias"},
               "missing");
}
