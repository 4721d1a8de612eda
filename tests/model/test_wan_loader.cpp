// DiT weight names and config at full size, from the official manifests (tests/data/manifests, copied from
// shared/wan_manifests: names and shapes read off the official code on the meta device): the 1.3B and 14B
// key sets are accepted exactly in the official and the diffusers layout, config inference gives the
// released configs, and a missing, unexpected or mis-shaped tensor is rejected with its name. VAE and T5
// key sets are recognized as other models.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "dit/model/wan_config.h"
#include "dit/model/wan_names.h"
#include "tests/harness/test_util.h"

using namespace vdit;
using namespace vdit::model;

namespace {

nlohmann::json read_json(const std::string& name) {
  std::ifstream f(test::data_path("manifests/" + name));
  EXPECT_TRUE(f.good()) << name;
  return nlohmann::json::parse(f);
}

TensorShapes shapes_from(const nlohmann::json& tensors) {
  TensorShapes s;
  for (auto it = tensors.begin(); it != tensors.end(); ++it) s[it.key()] = it.value().get<Shape>();
  return s;
}

TensorShapes official_manifest(const std::string& size) {
  return shapes_from(read_json("manifest_dit_t2v_" + size + ".json")["tensors"]);
}

TensorShapes diffusers_manifest(const std::string& size) {
  return shapes_from(read_json("manifest_diffusers.json")["t2v_" + size]);
}

struct Released {
  const char* size;
  int64_t dim, ffn_dim, heads, layers;
  size_t tensors;
};
const Released kReleased[] = {{"1.3B", 1536, 8960, 12, 30, 825}, {"14B", 5120, 13824, 40, 40, 1095}};

WanDitConfig resolve_ok(const TensorShapes& shapes, const std::string& what) {
  WanDitConfigSources src;
  src.weights_name = what;
  auto c = resolve_wan_dit_config(shapes, src);
  EXPECT_TRUE(c) << what << ": " << c.status().to_string();
  return c ? *c : WanDitConfig{};
}

void expect_error(const Status& st, StatusCode code, const std::vector<std::string>& parts, const std::string& what) {
  EXPECT_EQ(st.code(), code) << what << ": " << st.to_string();
  for (const auto& p : parts)
    EXPECT_NE(st.message().find(p), std::string::npos) << what << ": \"" << p << "\" not in: " << st.message();
}

}  // namespace

TEST(WanLoader, AcceptsFullSizeManifestsInBothLayouts) {
  for (const Released& r : kReleased) {
    for (WanLayout layout : {WanLayout::official, WanLayout::diffusers}) {
      const std::string what = std::string(r.size) + " " + wan_layout_name(layout);
      TensorShapes shapes = layout == WanLayout::official ? official_manifest(r.size) : diffusers_manifest(r.size);
      ASSERT_EQ(shapes.size(), r.tensors) << what;
      auto detected = detect_wan_dit_layout(shapes, what);
      ASSERT_TRUE(detected) << detected.status().to_string();
      EXPECT_EQ(*detected, layout) << what;
      WanDitConfig c = resolve_ok(shapes, what);
      EXPECT_EQ(c.dim, r.dim) << what;
      EXPECT_EQ(c.ffn_dim, r.ffn_dim) << what;
      EXPECT_EQ(c.num_heads, r.heads) << what;
      EXPECT_EQ(c.head_dim(), 128) << what;
      EXPECT_EQ(c.num_layers, r.layers) << what;
      EXPECT_EQ(c.in_dim, 16);
      EXPECT_EQ(c.out_dim, 16);
      EXPECT_EQ(c.text_dim, 4096);
      EXPECT_EQ(c.freq_dim, 256);
      EXPECT_EQ(c.text_len, 512);
      EXPECT_EQ(c.patch_size, (std::array<int64_t, 3>{1, 2, 2}));
      EXPECT_TRUE(c.qk_norm && c.cross_attn_norm);
      auto names = match_wan_dit_tensors(c, shapes, layout, what);
      ASSERT_TRUE(names) << names.status().to_string();
      EXPECT_EQ(names->size(), r.tensors) << what;
    }
  }
}

TEST(WanLoader, RenamingTableMapsOfficialOntoDiffusersExactly) {
  for (const Released& r : kReleased) {
    const TensorShapes official = official_manifest(r.size);
    const TensorShapes diffusers = diffusers_manifest(r.size);
    TensorShapes renamed;
    for (const auto& [name, shape] : official) renamed[wan_tensor_name(name, WanLayout::diffusers)] = shape;
    EXPECT_EQ(renamed, diffusers) << r.size;
  }
  // The norm2/norm3 swap: official norm3 (cross-attention LayerNorm) is diffusers norm2.
  EXPECT_EQ(wan_tensor_name("blocks.7.norm3.weight", WanLayout::diffusers), "blocks.7.norm2.weight");
  EXPECT_EQ(wan_tensor_name("blocks.7.cross_attn.o.bias", WanLayout::diffusers), "blocks.7.attn2.to_out.0.bias");
  EXPECT_EQ(wan_tensor_name("head.modulation", WanLayout::diffusers), "scale_shift_table");
  EXPECT_EQ(wan_tensor_name("blocks.0.modulation", WanLayout::diffusers), "blocks.0.scale_shift_table");
}

TEST(WanLoader, RejectsMissingUnexpectedAndMisshapedTensorsByName) {
  for (WanLayout layout : {WanLayout::official, WanLayout::diffusers}) {
    const TensorShapes full = layout == WanLayout::official ? official_manifest("14B") : diffusers_manifest("14B");
    const WanDitConfig c = resolve_ok(full, "14B");
    const std::string lname = wan_layout_name(layout);
    {
      TensorShapes s = full;
      const std::string gone = wan_tensor_name("blocks.17.cross_attn.norm_k.weight", layout);
      ASSERT_EQ(s.erase(gone), 1u);
      auto r = match_wan_dit_tensors(c, s, layout, "w.safetensors");
      expect_error(r.status(), StatusCode::format_error, {"missing tensor", gone, "w.safetensors"}, lname + " missing");
    }
    {
      TensorShapes s = full;
      s["blocks.3.self_attn.extra.weight"] = {5120};
      auto r = match_wan_dit_tensors(c, s, layout, "w.safetensors");
      expect_error(r.status(), StatusCode::format_error, {"unexpected tensor", "blocks.3.self_attn.extra.weight"},
                   lname + " unexpected");
    }
    {
      TensorShapes s = full;
      const std::string name = wan_tensor_name("blocks.39.ffn.2.weight", layout);
      s[name] = {5120, 13823};
      auto r = match_wan_dit_tensors(c, s, layout, "w.safetensors");
      expect_error(r.status(), StatusCode::format_error, {"wrong shape", name, "[5120, 13823]", "[5120, 13824]"},
                   lname + " shape");
    }
  }
}

TEST(WanLoader, ConfigSourcesMustAgreeWithShapes) {
  const TensorShapes shapes = official_manifest("1.3B");
  // Official config.json of Wan2.1-T2V-1.3B.
  const std::string path = std::string(VDIT_BINARY_DIR) + "/test_tmp_model_config.json";
  auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  WanDitConfigSources src;
  src.weights_name = "1.3B";
  src.config_json_path = path;
  write(R"({"_class_name": "WanModel", "_diffusers_version": "0.30.0", "dim": 1536, "eps": 1e-06, "ffn_dim": 8960,
            "freq_dim": 256, "in_dim": 16, "model_type": "t2v", "num_heads": 12, "num_layers": 30, "out_dim": 16,
            "text_len": 512})");
  auto ok = resolve_wan_dit_config(shapes, src);
  ASSERT_TRUE(ok) << ok.status().to_string();
  EXPECT_EQ(ok->num_heads, 12);
  // diffusers transformer/config.json.
  write(R"({"_class_name": "WanTransformer3DModel", "added_kv_proj_dim": null, "attention_head_dim": 128,
            "cross_attn_norm": true, "eps": 1e-06, "ffn_dim": 8960, "freq_dim": 256, "image_dim": null,
            "in_channels": 16, "num_attention_heads": 12, "num_layers": 30, "out_channels": 16,
            "patch_size": [1, 2, 2], "qk_norm": "rms_norm_across_heads", "rope_max_seq_len": 1024, "text_dim": 4096})");
  ok = resolve_wan_dit_config(diffusers_manifest("1.3B"), src);
  ASSERT_TRUE(ok) << ok.status().to_string();
  EXPECT_EQ(ok->num_heads, 12);
  EXPECT_EQ(ok->dim, 1536);
  // A smaller text_len from the config is taken (our built-in model may use one).
  write(R"({"text_len": 128, "num_heads": 24})");
  ok = resolve_wan_dit_config(shapes, src);
  ASSERT_TRUE(ok) << ok.status().to_string();
  EXPECT_EQ(ok->text_len, 128);
  EXPECT_EQ(ok->head_dim(), 64);

  write(R"({"dim": 2048, "num_heads": 16})");
  expect_error(resolve_wan_dit_config(shapes, src).status(), StatusCode::format_error,
               {"config.json", "dim = 2048", "tensor shapes", "dim = 1536"}, "dim conflict");
  write(R"({"num_layers": 32})");
  expect_error(resolve_wan_dit_config(shapes, src).status(), StatusCode::format_error,
               {"num_layers = 32", "num_layers = 30"}, "layer conflict");
  write(R"({"num_heads": 7})");
  expect_error(resolve_wan_dit_config(shapes, src).status(), StatusCode::invalid_argument,
               {"dim 1536 is not a multiple of num_heads 7"}, "heads");
  write(R"({"num_heads": 512})");  // head_dim 3: odd
  expect_error(resolve_wan_dit_config(shapes, src).status(), StatusCode::invalid_argument, {"must be even"},
               "odd head_dim");
  write(R"({"model_type": "i2v"})");
  expect_error(resolve_wan_dit_config(shapes, src).status(), StatusCode::unsupported, {"i2v"}, "i2v");
  write(R"({"text_len": "long"})");
  expect_error(resolve_wan_dit_config(shapes, src).status(), StatusCode::format_error, {"text_len", "integer"}, "type");
  write("{not json");
  expect_error(resolve_wan_dit_config(shapes, src).status(), StatusCode::format_error, {"not a valid JSON"}, "json");
  write(R"({"_class_name": "AutoencoderKLWan"})");
  expect_error(resolve_wan_dit_config(shapes, src).status(), StatusCode::format_error, {"AutoencoderKLWan"},
               "vae config");

  // Metadata as in the tiny goldens (Python reprs), and a conflict between config.json and metadata.
  std::map<std::string, std::string> md = {{"dim", "1536"},     {"num_heads", "12"}, {"patch_size", "(1, 2, 2)"},
                                           {"qk_norm", "True"}, {"eps", "1e-06"},    {"window_size", "(-1, -1)"}};
  src.metadata = &md;
  src.config_json_path.reset();
  ok = resolve_wan_dit_config(shapes, src);
  ASSERT_TRUE(ok) << ok.status().to_string();
  md["qk_norm"] = "False";
  expect_error(resolve_wan_dit_config(shapes, src).status(), StatusCode::format_error,
               {"metadata", "qk_norm = false", "qk_norm = true"}, "qk_norm conflict");
  md["qk_norm"] = "True";
  md["window_size"] = "(256, 256)";
  expect_error(resolve_wan_dit_config(shapes, src).status(), StatusCode::unsupported, {"window_size"}, "window");
  md["window_size"] = "(-1, -1)";
  write(R"({"num_heads": 24})");
  src.config_json_path = path;
  expect_error(resolve_wan_dit_config(shapes, src).status(), StatusCode::format_error,
               {"config.json", "num_heads = 24", "metadata", "num_heads = 12"}, "json vs metadata");
  std::remove(path.c_str());

  // No config anywhere and a dim that is not a multiple of 128: says what to do.
  src.metadata = nullptr;
  src.config_json_path.reset();
  TensorShapes odd = shapes;
  src.head_dim_hint = 100;
  expect_error(resolve_wan_dit_config(odd, src).status(), StatusCode::invalid_argument,
               {"cannot infer num_heads", "config.json"}, "no heads");
}

TEST(WanLoader, RecognizesOtherModels) {
  const TensorShapes vae = shapes_from(read_json("manifest_vae.json")["tensors"]);
  expect_error(detect_wan_dit_layout(vae, "Wan2.1_VAE.pth").status(), StatusCode::format_error,
               {"Wan2.1_VAE.pth", "not a Wan2.1 DiT", "VAE"}, "vae");
  const TensorShapes t5 = shapes_from(read_json("manifest_t5_umt5_xxl_enc.json")["tensors"]);
  expect_error(detect_wan_dit_layout(t5, "t5.pth").status(), StatusCode::format_error, {"not a Wan2.1 DiT", "T5"},
               "t5");
  const TensorShapes diffusers_vae = shapes_from(read_json("manifest_diffusers.json")["vae"]);
  expect_error(detect_wan_dit_layout(diffusers_vae, "vae.safetensors").status(), StatusCode::format_error, {"VAE"},
               "diffusers vae");
  TensorShapes i2v = official_manifest("1.3B");
  i2v["img_emb.proj.0.weight"] = {1280};
  expect_error(detect_wan_dit_layout(i2v, "i2v").status(), StatusCode::unsupported, {"image-to-video"}, "i2v");
  TensorShapes comfy;
  for (const auto& [k, v] : official_manifest("1.3B")) comfy["model.diffusion_model." + k] = v;
  expect_error(detect_wan_dit_layout(comfy, "comfy").status(), StatusCode::format_error, {"model.diffusion_model."},
               "prefixed");
}
