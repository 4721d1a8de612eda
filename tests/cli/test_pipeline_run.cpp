// The pipeline end to end on a tiny random model (tests/cli/fixture/tiny_model.h): frames reach the sink
// with the right count and size; a seed reproduces exactly and another seed differs; --noise, --embeds
// and decoding --save-latents reproduce the seeded prompt run bit for bit; cancelling leaves no output;
// the plan derives the size from a noise file and rejects mismatched inputs.
#include <gtest/gtest.h>

#include <filesystem>

#include "dit/core/device_buffer.h"
#include "dit/core/rng.h"
#include "dit/pipeline/decode_latents.h"
#include "dit/pipeline/latent_files.h"
#include "dit/pipeline/text_to_video.h"
#include "dit/text/t5_encoder.h"
#include "dit/text/tokenizer.h"
#include "io/image_writer.h"
#include "io/safetensors_writer.h"
#include "io/tensor_file.h"
#include "io/video_reader.h"
#include "io/video_writer.h"
#include "tests/cli/fixture/tiny_model.h"
#include "tests/harness/test_util.h"
#include "tests/media/media_test_util.h"

namespace vdit::test {
namespace {

namespace fs = std::filesystem;
using namespace vdit::pipeline;

class TinyPipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!video_writer_available() || !image_io_available()) GTEST_SKIP() << "built without FFmpeg or OpenCV";
    if (text::Tokenizer::load(VDIT_TEST_DATA_DIR "/text/tiny_unigram.model").status().code() ==
        StatusCode::unsupported) {
      GTEST_SKIP() << "built without sentencepiece";
    }
    ASSERT_FALSE(dir_.path().empty());
    Status s = write_tiny_model_folder(dir_ / "model", VDIT_TEST_DATA_DIR);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }

  // 5 frames of 32x32 (latent [16, 2, 4, 4]), 2 UniPC steps, seed 7.
  GenerationInputs inputs() const {
    GenerationInputs in;
    in.model.dir = dir_ / "model";
    in.prompt = "a cat surfing a wave";
    in.settings.frames = 5;
    in.settings.height = 32;
    in.settings.width = 32;
    in.settings.steps = 2;
    in.seed = 7;
    return in;
  }

  // Runs `in` into `output`; fails the test on error.
  GenerationReport run(const GenerationInputs& in, const std::string& output) {
    auto plan = plan_generation(in);
    EXPECT_TRUE(plan.is_ok()) << plan.status().to_string();
    if (!plan) return {};
    auto sink = create_frame_sink(output, {});
    EXPECT_TRUE(sink.is_ok()) << sink.status().to_string();
    auto report = run_generation(*plan, sink->get(), {});
    EXPECT_TRUE(report.is_ok()) << report.status().to_string();
    return report ? *report : GenerationReport{};
  }

  // The frames of a numbered-PNG folder, in order.
  static std::vector<std::vector<uint8_t>> read_frames(const std::string& folder, int expect_w, int expect_h) {
    std::vector<std::vector<uint8_t>> frames;
    for (int i = 0;; ++i) {
      std::string path = folder + strfmt("/frame_%05d.png", i);
      if (!fs::exists(path)) break;
      auto img = read_image_rgb(path);
      EXPECT_TRUE(img.is_ok()) << img.status().to_string();
      if (!img) break;
      EXPECT_EQ(img->width, expect_w);
      EXPECT_EQ(img->height, expect_h);
      frames.push_back(img->pixels);
    }
    return frames;
  }

  TempFolder dir_;
};

TEST_F(TinyPipeline, WritesAVideoWithTheRequestedFramesAndSize) {
  GenerationReport r = run(inputs(), dir_ / "out.mp4");
  EXPECT_EQ(r.frames_written, 5);
  EXPECT_EQ(shape_str(r.latent_shape), "[16, 2, 4, 4]");
  EXPECT_EQ(r.seed, 7u);
  EXPECT_GT(r.timings.denoising_s, 0);
  EXPECT_EQ(r.timings.attention_calls, 2 * 2 * 2);  // 2 layers x 2 steps x 2 CFG branches
  EXPECT_GT(r.timings.attention_s, 0);
  EXPECT_LE(r.timings.attention_s, r.timings.denoising_s);
  EXPECT_GT(r.timings.text_encoder_s, 0);
  EXPECT_GT(r.timings.vae_s, 0);
  EXPECT_GT(r.timings.encoding_s, 0);
  auto video = read_video_rgb(dir_ / "out.mp4");
  ASSERT_TRUE(video.is_ok()) << video.status().to_string();
  EXPECT_EQ(video->frames.size(), 5u);
  EXPECT_EQ(video->width, 32);
  EXPECT_EQ(video->height, 32);
  EXPECT_NEAR(video->fps, 16.0, 1e-9);
}

TEST_F(TinyPipeline, OneFrameMakesAnImage) {
  GenerationInputs in = inputs();
  in.settings.frames = 1;
  GenerationReport r = run(in, dir_ / "still.png");
  EXPECT_EQ(r.frames_written, 1);
  auto img = read_image_rgb(dir_ / "still.png");
  ASSERT_TRUE(img.is_ok());
  EXPECT_EQ(img->width, 32);
  EXPECT_EQ(shape_str(r.latent_shape), "[16, 1, 4, 4]");
}

TEST_F(TinyPipeline, SeedReproducesAndAnotherSeedDiffers) {
  run(inputs(), dir_ / "a/");
  run(inputs(), dir_ / "b/");
  GenerationInputs other = inputs();
  other.seed = 8;
  run(other, dir_ / "c/");
  auto a = read_frames(dir_ / "a", 32, 32), b = read_frames(dir_ / "b", 32, 32), c = read_frames(dir_ / "c", 32, 32);
  ASSERT_EQ(a.size(), 5u);
  EXPECT_TRUE(a == b) << "same seed, different frames";
  ASSERT_EQ(c.size(), 5u);
  EXPECT_FALSE(a == c) << "seeds 7 and 8 gave identical frames";
}

TEST_F(TinyPipeline, DecodingSavedLatentsReproducesTheFrames) {
  GenerationInputs in = inputs();
  in.save_latents_path = dir_ / "latents.safetensors";
  run(in, dir_ / "gen/");
  auto file = open_tensor_file(in.save_latents_path);
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  ASSERT_NE((*file)->find("latents"), nullptr);
  EXPECT_EQ(shape_str((*file)->find("latents")->shape), "[16, 2, 4, 4]");
  const auto& meta = (*file)->metadata();
  EXPECT_EQ(meta.at("seed"), "7");
  EXPECT_EQ(meta.at("prompt"), "a cat surfing a wave");
  EXPECT_EQ(meta.at("steps"), "2");
  EXPECT_EQ(meta.at("sampler"), "unipc");
  EXPECT_EQ(meta.at("fps"), "16");

  DecodeInputs d;
  d.model.dir = dir_ / "model";
  d.latents_path = in.save_latents_path;
  auto plan = plan_decode(d);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  EXPECT_EQ(plan->frames, 5);
  EXPECT_EQ(plan->width, 32);
  auto sink = create_frame_sink(dir_ / "dec/", {});
  auto t = run_decode(*plan, sink->get(), {});
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  auto gen = read_frames(dir_ / "gen", 32, 32), dec = read_frames(dir_ / "dec", 32, 32);
  ASSERT_EQ(gen.size(), 5u);
  EXPECT_TRUE(gen == dec) << "decode of the saved latents differs from the generated frames";
}

TEST_F(TinyPipeline, NoiseFileReproducesTheSeedAndSetsTheSize) {
  auto noise = gaussian_noise(7, {16, 2, 4, 4});
  ASSERT_TRUE(noise.is_ok());
  ASSERT_TRUE(save_safetensors(dir_ / "noise.safetensors", {{"noise", *noise}}).is_ok());
  GenerationInputs in = inputs();
  in.settings.frames.reset();  // taken from the noise
  in.settings.height.reset();
  in.settings.width.reset();
  in.seed = 12345;  // ignored: the noise file wins
  in.noise_path = dir_ / "noise.safetensors";
  auto plan = plan_generation(in);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  EXPECT_EQ(plan->settings.frames, 5);
  EXPECT_EQ(plan->settings.height, 32);
  EXPECT_EQ(plan->settings.width, 32);
  run(in, dir_ / "from_noise/");
  run(inputs(), dir_ / "from_seed/");
  auto a = read_frames(dir_ / "from_noise", 32, 32), b = read_frames(dir_ / "from_seed", 32, 32);
  ASSERT_EQ(a.size(), 5u);
  EXPECT_TRUE(a == b);

  in.settings.height = 64;  // conflicts with the noise
  auto bad = plan_generation(in);
  EXPECT_EQ(bad.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(bad.status().message().find("holds noise [16, 2, 4, 4]"), std::string::npos) << bad.status().message();
}

TEST_F(TinyPipeline, EmbeddingsFileReplacesTheTextEncoder) {
  // The same contexts the pipeline computes: tokenizer + T5, trimmed to the prompt's tokens.
  auto tok = text::Tokenizer::load(dir_ / "model/tokenizer.model");
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  auto t5 = text::T5Encoder::load(dir_ / "model/text_encoder.safetensors");
  ASSERT_TRUE(t5.is_ok()) << t5.status().to_string();
  auto encode = [&](const std::string& p) {
    auto ids = tok->encode(p);
    EXPECT_TRUE(ids.is_ok());
    auto ctx = t5->encode_trimmed(ids->ids, ids->mask);
    EXPECT_TRUE(ctx.is_ok()) << ctx.status().to_string();
    return *ctx;
  };
  Tensor cond = encode("a cat surfing a wave"), uncond = encode(kWanNegativePrompt);
  ASSERT_TRUE(save_safetensors(dir_ / "embeds.safetensors", {{"context", cond}, {"negative_context", uncond}}).is_ok());
  GenerationInputs in = inputs();
  in.prompt.clear();
  in.embeds_path = dir_ / "embeds.safetensors";
  GenerationReport r = run(in, dir_ / "from_embeds/");
  EXPECT_EQ(r.timings.text_encoder_s, 0);
  run(inputs(), dir_ / "from_prompt/");
  auto a = read_frames(dir_ / "from_embeds", 32, 32), b = read_frames(dir_ / "from_prompt", 32, 32);
  ASSERT_EQ(a.size(), 5u);
  EXPECT_TRUE(a == b);

  // Without negative_context, guidance must be 1.
  ASSERT_TRUE(save_safetensors(dir_ / "cond_only.safetensors", {{"context", cond}}).is_ok());
  in.embeds_path = dir_ / "cond_only.safetensors";
  auto bad = plan_generation(in);
  EXPECT_EQ(bad.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(bad.status().message().find("--guidance 1"), std::string::npos) << bad.status().message();
  in.settings.guidance = 1.0;
  GenerationReport single = run(in, dir_ / "single/");
  EXPECT_EQ(single.frames_written, 5);
  EXPECT_EQ(single.timings.attention_calls, 2 * 2);  // one branch only
}

// A sink whose disk "fills up" after one frame.
class FailingSink : public FrameSink {
 public:
  Status open(int, int, double, int) override { return Status::ok(); }
  Status write(const uint8_t*, size_t) override {
    if (frames_ >= 1) return io_error("no space left on device (test sink)");
    ++frames_;
    return Status::ok();
  }
  Status finish() override { return Status::ok(); }
  void abort() override { aborted_ = true; }
  const std::string& path() const override { return path_; }
  int frames_written() const override { return frames_; }
  bool aborted_ = false;

 private:
  std::string path_ = "failing";
  int frames_ = 0;
};

TEST_F(TinyPipeline, FailedDecodeKeepsTheLatentsForVditDecode) {
  GenerationInputs in = inputs();
  in.recovery_latents_path = dir_ / "out.latents.safetensors";
  auto plan = plan_generation(in);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  FailingSink sink;
  auto r = run_generation(*plan, &sink, {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(sink.aborted_);
  const std::string msg = r.status().message();
  EXPECT_NE(msg.find("no space left"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vdit decode --latents " + in.recovery_latents_path), std::string::npos) << msg;

  // The kept latents decode to the frames a successful run writes.
  DecodeInputs d;
  d.model.dir = dir_ / "model";
  d.latents_path = in.recovery_latents_path;
  auto dplan = plan_decode(d);
  ASSERT_TRUE(dplan.is_ok()) << dplan.status().to_string();
  auto dsink = create_frame_sink(dir_ / "dec/", {});
  ASSERT_TRUE(run_decode(*dplan, dsink->get(), {}).is_ok());
  run(inputs(), dir_ / "gen/");
  EXPECT_TRUE(read_frames(dir_ / "gen", 32, 32) == read_frames(dir_ / "dec", 32, 32));
}

TEST_F(TinyPipeline, CancellingLeavesNoOutput) {
  auto plan = plan_generation(inputs());
  ASSERT_TRUE(plan.is_ok());
  for (Stage stop_at : {Stage::denoising, Stage::vae_decode}) {
    auto sink = create_frame_sink(dir_ / "out/cancelled.mp4", {});
    fs::create_directories(dir_ / "out");
    auto r = run_generation(*plan, sink->get(),
                            [&](const ProgressEvent& e) { return !(e.stage == stop_at && e.done >= 1); });
    EXPECT_EQ(r.status().code(), StatusCode::cancelled) << r.status().to_string();
    EXPECT_TRUE(fs::is_empty(dir_ / "out")) << "output left after cancelling in " << stage_name(stop_at);
  }
}

TEST_F(TinyPipeline, PlanRejectsBadInputsBeforeLoading) {
  GenerationInputs in = inputs();
  in.attention_method = "nosuch";
  EXPECT_NE(plan_generation(in).status().message().find("unknown attention method"), std::string::npos);
  in = inputs();
  in.attention_config = "{\"no_such_key\": 1}";
  EXPECT_EQ(plan_generation(in).status().code(), StatusCode::invalid_argument);
  if (cuda_device_count() == 0) {  // no GPU (or a build without CUDA): both devices are refused at plan time
    in = inputs();
    in.text_encoder_device = "cuda";
    EXPECT_EQ(plan_generation(in).status().code(), StatusCode::unsupported);
    in = inputs();
    in.device = "cuda";
    EXPECT_EQ(plan_generation(in).status().code(), StatusCode::unsupported);
  }
  in = inputs();
  in.model.vae = dir_ / "model/dit.safetensors";  // a weight file, but not a VAE
  Status s = plan_generation(in).status();
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("VAE"), std::string::npos) << s.message();
  in = inputs();
  in.save_latents_path = dir_ / "nowhere/latents.safetensors";
  EXPECT_EQ(plan_generation(in).status().code(), StatusCode::not_found);
  in = inputs();
  in.seed.reset();
  auto random = plan_generation(in);
  ASSERT_TRUE(random.is_ok());
  EXPECT_TRUE(random->seed_was_random);
}

}  // namespace
}  // namespace vdit::test
