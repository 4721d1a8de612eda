// The cheap half of the pipeline: model folder layouts and part overrides, the built-in model's default
// location, settings defaults (model metadata over Wan2.1's) and their range checks.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "dit/pipeline/generation_settings.h"
#include "dit/pipeline/model_files.h"
#include "tests/media/media_test_util.h"

namespace vdit::test {
namespace {

namespace fs = std::filesystem;
using namespace vdit::pipeline;

void touch(const std::string& path) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << "x";
}

ModelPathOverrides in_dir(const std::string& dir) {
  ModelPathOverrides given;
  given.dir = dir;
  return given;
}

void expect_error(const Status& s, StatusCode code, const std::string& needle) {
  EXPECT_EQ(s.code(), code) << s.to_string();
  EXPECT_NE(s.message().find(needle), std::string::npos) << "message lacks \"" << needle << "\": " << s.message();
}

TEST(ModelFiles, OfficialLayout) {
  TempFolder dir;
  for (const char* f : {"diffusion_pytorch_model.safetensors", "config.json", "models_t5_umt5-xxl-enc-bf16.pth",
                        "Wan2.1_VAE.pth", "google/umt5-xxl/spiece.model"}) {
    touch(dir / f);
  }
  auto files = locate_model_files(in_dir(dir.path()), {});
  ASSERT_TRUE(files.is_ok()) << files.status().to_string();
  EXPECT_EQ(files->layout, "official");
  EXPECT_EQ(files->dit, dir.path());
  EXPECT_EQ(files->text_encoder, dir / "models_t5_umt5-xxl-enc-bf16.pth");
  EXPECT_EQ(files->tokenizer, dir / "google/umt5-xxl/spiece.model");
  EXPECT_EQ(files->vae, dir / "Wan2.1_VAE.pth");
}

TEST(ModelFiles, ShardedOfficialDitIsFound) {
  TempFolder dir;
  for (const char* f : {"diffusion_pytorch_model-00001-of-00006.safetensors",
                        "diffusion_pytorch_model.safetensors.index.json", "Wan2.1_VAE.pth"}) {
    touch(dir / f);
  }
  auto files = locate_model_files(in_dir(dir.path()), {true, false, true});  // no text parts needed (embeddings)
  ASSERT_TRUE(files.is_ok()) << files.status().to_string();
  EXPECT_EQ(files->layout, "official");
  EXPECT_TRUE(files->text_encoder.empty());
}

TEST(ModelFiles, DiffusersLayout) {
  TempFolder dir;
  for (const char* f : {"model_index.json", "transformer/diffusion_pytorch_model-00001-of-00002.safetensors",
                        "text_encoder/model.safetensors.index.json", "tokenizer/spiece.model",
                        "vae/diffusion_pytorch_model.safetensors"}) {
    touch(dir / f);
  }
  auto files = locate_model_files(in_dir(dir.path()), {});
  ASSERT_TRUE(files.is_ok()) << files.status().to_string();
  EXPECT_EQ(files->layout, "diffusers");
  EXPECT_EQ(files->dit, dir / "transformer");
  EXPECT_EQ(files->text_encoder, dir / "text_encoder");
  EXPECT_EQ(files->tokenizer, dir / "tokenizer");
  EXPECT_EQ(files->vae, dir / "vae/diffusion_pytorch_model.safetensors");
}

TEST(ModelFiles, BuiltInLayoutAndOverrides) {
  TempFolder dir;
  for (const char* f : {"dit.safetensors", "text_encoder.safetensors", "tokenizer.model"}) touch(dir / f);
  expect_error(locate_model_files(in_dir(dir.path()), {}).status(), StatusCode::not_found, "has no VAE: expected");
  expect_error(locate_model_files(in_dir(dir.path()), {}).status(), StatusCode::not_found, "--vae");
  touch(dir / "elsewhere/my_vae.safetensors");
  ModelPathOverrides given = in_dir(dir.path());
  given.vae = dir / "elsewhere/my_vae.safetensors";
  auto files = locate_model_files(given, {});
  ASSERT_TRUE(files.is_ok()) << files.status().to_string();
  EXPECT_EQ(files->layout, "built-in");
  EXPECT_EQ(files->vae, given.vae);
  EXPECT_EQ(files->dit, dir / "dit.safetensors");
  given.vae = dir / "elsewhere/missing.safetensors";
  expect_error(locate_model_files(given, {}).status(), StatusCode::not_found, "(--vae) does not exist");
}

TEST(ModelFiles, EveryPartGivenNeedsNoFolder) {
  TempFolder dir;
  for (const char* f : {"a.safetensors", "b.safetensors"}) touch(dir / f);
  ModelPathOverrides given;
  given.dit = dir / "a.safetensors";
  given.vae = dir / "b.safetensors";
  auto files = locate_model_files(given, {true, false, true});
  ASSERT_TRUE(files.is_ok()) << files.status().to_string();
  EXPECT_EQ(files->layout, "separate files");
}

TEST(ModelFiles, UnknownFolderAndMissingFolder) {
  TempFolder dir;
  touch(dir / "readme.txt");
  expect_error(locate_model_files(in_dir(dir.path()), {}).status(), StatusCode::not_found, "is not a model folder");
  expect_error(locate_model_files(in_dir(dir / "nowhere"), {}).status(), StatusCode::not_found, "does not exist");
  expect_error(locate_model_files(in_dir(dir / "readme.txt"), {}).status(), StatusCode::invalid_argument, "is a file");
}

TEST(ModelFiles, DefaultModelDirHonoursTheEnvironment) {
  TempFolder dir;
  const char* old = std::getenv("VDIT_MODEL_DIR");
  std::string saved = old ? old : "";
  setenv("VDIT_MODEL_DIR", dir.path().c_str(), 1);
  EXPECT_EQ(default_model_dir("/opt/vdit/bin/vdit"), dir.path());
  auto candidates = default_model_dir_candidates("/opt/vdit/bin/vdit");
  ASSERT_GE(candidates.size(), 3u);
  EXPECT_EQ(candidates[1], "/opt/vdit/share/vdit/models/vdit-tiny-t2v");
  EXPECT_EQ(candidates[2], "/samples/models/vdit-tiny-t2v");  // <exe_dir>/../../../samples/... from /opt/vdit/bin
  unsetenv("VDIT_MODEL_DIR");
  candidates = default_model_dir_candidates("/work/x/build/release/bin/vdit");
  EXPECT_EQ(candidates[0], "/work/x/build/release/share/vdit/models/vdit-tiny-t2v");
  EXPECT_EQ(candidates[1], "/work/x/samples/models/vdit-tiny-t2v");
  if (old) setenv("VDIT_MODEL_DIR", saved.c_str(), 1);
}

TEST(Settings, WanDefaultsWhenNothingIsGiven) {
  GenerationSettings s = resolve_settings({}, {});
  EXPECT_EQ(s.frames, 81);
  EXPECT_EQ(s.height, 480);
  EXPECT_EQ(s.width, 832);
  EXPECT_EQ(s.steps, 50);
  EXPECT_EQ(s.shift, 5.0);
  EXPECT_EQ(s.guidance, 5.0);
  EXPECT_EQ(s.sampler, "unipc");
  EXPECT_EQ(s.fps, 16.0);
  EXPECT_EQ(s.negative_prompt, kWanNegativePrompt);
  EXPECT_EQ(std::string(kWanNegativePrompt).rfind("色调艳丽，过曝", 0), 0u);
  EXPECT_TRUE(validate_settings(s).is_ok());
  EXPECT_EQ(s.latent_frames(), 21);
  EXPECT_EQ(s.latent_height(), 60);
  EXPECT_EQ(s.latent_width(), 104);
}

TEST(Settings, ModelMetadataThenRequest) {
  auto d = model_defaults_from_metadata({{"height", "256"},
                                         {"width", "256"},
                                         {"frames", "17"},
                                         {"steps", "20"},
                                         {"shift", "3"},
                                         {"guidance", "4.5"},
                                         {"sampler", "euler"},
                                         {"fps", "8"},
                                         {"negative_prompt", ""},
                                         {"dim", "256"}},
                                        "tiny");
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  SettingsRequest r;
  r.steps = 4;
  r.negative_prompt = "blurry";
  GenerationSettings s = resolve_settings(r, *d);
  EXPECT_EQ(s.height, 256);
  EXPECT_EQ(s.frames, 17);
  EXPECT_EQ(s.steps, 4);  // the request wins
  EXPECT_EQ(s.shift, 3.0);
  EXPECT_EQ(s.guidance, 4.5);
  EXPECT_EQ(s.sampler, "euler");
  EXPECT_EQ(s.fps, 8.0);
  EXPECT_EQ(s.negative_prompt, "blurry");
  // The model's own (empty) negative prompt replaces Wan's when the request gives none.
  EXPECT_EQ(resolve_settings({}, *d).negative_prompt, "");
  expect_error(model_defaults_from_metadata({{"frames", "seventeen"}}, "tiny.safetensors").status(),
               StatusCode::format_error, "tiny.safetensors: metadata key \"frames\" = \"seventeen\" is not an integer");
}

TEST(Settings, RangeChecks) {
  auto with = [](auto change) {
    GenerationSettings s;
    change(s);
    return validate_settings(s);
  };
  expect_error(with([](auto& s) { s.frames = 10; }), StatusCode::invalid_argument, "frames 10 is not of the form 4k+1");
  expect_error(with([](auto& s) { s.frames = 0; }), StatusCode::invalid_argument, "use 1 or 5");
  EXPECT_TRUE(with([](auto& s) { s.frames = 1; }).is_ok());
  expect_error(with([](auto& s) { s.height = 100; }), StatusCode::invalid_argument,
               "height 100 is not a positive multiple of 16");
  expect_error(with([](auto& s) { s.width = -16; }), StatusCode::invalid_argument, "width -16");
  expect_error(with([](auto& s) { s.steps = 0; }), StatusCode::invalid_argument, "steps 0");
  expect_error(with([](auto& s) { s.guidance = -1; }), StatusCode::invalid_argument, "guidance -1");
  expect_error(with([](auto& s) { s.shift = 0; }), StatusCode::invalid_argument, "shift 0");
  expect_error(with([](auto& s) { s.fps = 0; }), StatusCode::invalid_argument, "fps 0");
  expect_error(with([](auto& s) { s.sampler = "ddim"; }), StatusCode::invalid_argument,
               "unknown sampler \"ddim\"; known: ");
  for (const char* name : {"unipc", "euler", "dpm++"}) {
    EXPECT_TRUE(with([&](auto& s) { s.sampler = name; }).is_ok()) << name;
  }
}

TEST(Settings, MetadataRoundTrip) {
  GenerationSettings s;
  s.guidance = 0.1;
  auto m = settings_metadata(s);
  EXPECT_EQ(m["guidance"], "0.1");
  EXPECT_EQ(m["frames"], "81");
  auto d = model_defaults_from_metadata(m, "x");
  ASSERT_TRUE(d.is_ok());
  GenerationSettings back = resolve_settings({}, *d);
  EXPECT_EQ(back.guidance, 0.1);
  EXPECT_EQ(back.negative_prompt, s.negative_prompt);
}

}  // namespace
}  // namespace vdit::test
