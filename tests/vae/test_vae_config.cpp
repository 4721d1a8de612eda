// VAE config resolution (metadata, config JSON, inference, latent statistics) and the layer table: the
// released config's decoder tensors must equal the official and diffusers manifests exactly (names and
// shapes; tests/data/vae/manifest_vae_decoder.json is the decoder side of ../shared/wan_manifests).
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "dit/vae/vae_config.h"
#include "dit/vae/vae_layout.h"
#include "io/tensor_file.h"
#include "tests/harness/test_util.h"

namespace vdit::vae {
namespace {

TEST(VaeConfig, MetadataAsTheOfficialCodeWritesIt) {
  std::map<std::string, std::string> meta = {
      {"z_dim", "16"}, {"attn_scales", "[]"}, {"temperal_downsample", "[False, True, True]"},
      {"dropout", "0.0"}, {"num_res_blocks", "2"}, {"dim_mult", "[1, 2, 4, 4]"}, {"dim", "16"}, {"format", "pt"}};
  VaeConfigSources s;
  s.weights_name = "tiny";
  s.metadata = &meta;
  auto c = resolve_vae_config(s);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->dim, 16);
  EXPECT_EQ(c->z_dim, 16);
  EXPECT_EQ(c->temperal_downsample, (std::vector<bool>{false, true, true}));
  EXPECT_EQ(c->normalization_source, "wan2.1 constants");
  EXPECT_EQ(c->latents_mean, wan21_latents_mean());
}

TEST(VaeConfig, LatentStatisticsFromMetadataWin) {
  std::map<std::string, std::string> meta = {{"dim", "24"}, {"z_dim", "4"}, {"latents_mean", "[0.5, -1, 0, 2]"},
                                             {"latents_std", "[1, 2, 3, 4.5]"}};
  VaeConfigSources s;
  s.weights_name = "builtin";
  s.metadata = &meta;
  s.config_json = R"({"_class_name": "AutoencoderKLWan", "latents_mean": [9, 9, 9, 9], "latents_std": [9, 9, 9, 9]})";
  auto c = resolve_vae_config(s);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->dim, 24);
  EXPECT_EQ(c->normalization_source, "metadata");
  EXPECT_EQ(c->latents_mean, (std::vector<float>{0.5f, -1.f, 0.f, 2.f}));
  EXPECT_EQ(c->latents_std, (std::vector<float>{1.f, 2.f, 3.f, 4.5f}));
}

TEST(VaeConfig, DiffusersConfigJsonOverridesMetadata) {
  std::map<std::string, std::string> meta = {{"dim", "16"}};
  VaeConfigSources s;
  s.weights_name = "w";
  s.metadata = &meta;
  s.config_json = R"({"_class_name": "AutoencoderKLWan", "base_dim": 32, "z_dim": 16, "dim_mult": [1, 2, 2],
                      "num_res_blocks": 1, "temperal_downsample": [false, true], "attn_scales": []})";
  auto c = resolve_vae_config(s);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->dim, 32);
  EXPECT_EQ(c->dim_mult, (std::vector<int64_t>{1, 2, 2}));
  EXPECT_EQ(c->num_res_blocks, 1);
  EXPECT_EQ(c->normalization_source, "wan2.1 constants");
}

TEST(VaeConfig, ClearErrors) {
  VaeConfigSources s;
  s.weights_name = "w";
  s.inferred_z_dim = 8;  // no statistics for 8 channels
  auto c = resolve_vae_config(s);
  EXPECT_EQ(c.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(c.status().message().find("latents_mean"), std::string::npos) << c.status().message();

  std::map<std::string, std::string> meta = {{"attn_scales", "[1.0]"}};
  s = {};
  s.weights_name = "w";
  s.metadata = &meta;
  EXPECT_EQ(resolve_vae_config(s).status().code(), StatusCode::unsupported);

  meta = {{"temperal_downsample", "[True]"}};
  auto bad = resolve_vae_config(s);
  EXPECT_EQ(bad.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(bad.status().message().find("temperal_downsample"), std::string::npos) << bad.status().message();

  meta = {{"latents_mean", "[1, 2]"}};
  EXPECT_EQ(resolve_vae_config(s).status().code(), StatusCode::format_error);  // std missing

  s = {};
  s.weights_name = "w";
  s.config_json = R"({"_class_name": "WanTransformer3DModel"})";
  s.config_json_name = "config.json";
  EXPECT_EQ(resolve_vae_config(s).status().code(), StatusCode::invalid_argument);
  s.config_json = R"({"_class_name": "AutoencoderKLWan", "is_residual": true})";
  EXPECT_EQ(resolve_vae_config(s).status().code(), StatusCode::unsupported);
  s.config_json = "{not json";
  EXPECT_EQ(resolve_vae_config(s).status().code(), StatusCode::format_error);
}

TEST(VaeConfig, WanConstantsMatchGolden) {
  auto g = open_tensor_file(test::data_path("vae/vae_tiny_golden.safetensors"));
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  Tensor mean = (*g)->tensor_f32("const.mean").value(), stdv = (*g)->tensor_f32("const.std").value();
  ASSERT_EQ(mean.numel(), 16);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(mean.f32()[i], wan21_latents_mean()[i]) << i;
    EXPECT_EQ(stdv.f32()[i], wan21_latents_std()[i]) << i;
  }
}

// The released config's decoder tensors equal the manifests (official and diffusers) exactly.
TEST(VaeLayout, ReleasedConfigMatchesManifests) {
  std::ifstream in(test::data_path("vae/manifest_vae_decoder.json"));
  ASSERT_TRUE(in.good());
  nlohmann::json m = nlohmann::json::parse(in);
  VaeConfig c;
  c.latents_mean = wan21_latents_mean();
  c.latents_std = wan21_latents_std();
  auto layers = decoder_layers(c);
  ASSERT_TRUE(layers.is_ok()) << layers.status().to_string();
  std::map<std::string, Shape> official, diffusers;
  for (const auto& l : *layers) {
    for (const auto& t : l.tensors) {
      EXPECT_TRUE(official.emplace(t.name, t.shape).second) << "duplicate " << t.name;
      EXPECT_TRUE(diffusers.emplace(t.diffusers_name, t.shape).second) << "duplicate " << t.diffusers_name;
    }
  }
  for (const char* key : {"official", "diffusers"}) {
    const auto& ours = std::string(key) == "official" ? official : diffusers;
    std::map<std::string, Shape> theirs;
    for (auto& [name, shape] : m[key].items()) theirs[name] = shape.get<Shape>();
    EXPECT_EQ(ours.size(), theirs.size()) << key;
    for (const auto& [name, shape] : theirs) {
      auto it = ours.find(name);
      if (it == ours.end()) {
        ADD_FAILURE() << key << ": manifest tensor " << name << " missing from the layout";
        continue;
      }
      EXPECT_EQ(shape_str(it->second), shape_str(shape)) << key << " " << name;
    }
  }
  EXPECT_EQ(temporal_upsamples(*layers), 2);
  EXPECT_EQ(spatial_upsample_factor(*layers), 8);
  // 6 + (1+6)/2 + (1+6)/4 + (1+6+1)/8 = 12.25 latent pixels of reach after the middle block.
  EXPECT_EQ(tiling_halo(*layers, first_local_layer(*layers)), 13);
  EXPECT_EQ((*layers)[first_local_layer(*layers)].name, "decoder.upsamples.0");
}

}  // namespace
}  // namespace vdit::vae
