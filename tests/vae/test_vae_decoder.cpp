// The VAE decoder against the official goldens (tiny dim-16 VAE, wan.md §7.4): output before and after
// the clamp and the recorded stage tensors, the end-to-end pipeline golden incl. uint8 pixels; then
// causality, diffusers names, bf16/f16 weights, config from metadata vs inferred, custom latent
// statistics, exact tiling, and the errors a caller can cause.
#include <cstring>
#include <fstream>

#include "tests/harness/test_util.h"
#include "tests/vae/vae_causality.h"
#include "tests/vae/vae_test_util.h"

namespace vdit::vae {
namespace {

using test::expect_close;
using vae_test::decode_all;
using vae_test::squeeze0;

// Tolerances (max|Δ|/max|ref|), all fp32 paths:
constexpr double kGoldenTol = 1e-5;  // brief's bound; PyTorch streaming vs one-shot differ by 1.5e-6
// Same math on other band shapes: each output column is the same K = Ci sums, so the result has been
// bit-identical (measured 0); the bound allows a BLAS that blocks narrower N differently. An error in
// the halo logic gives O(1e-1).
constexpr double kTileTol = 1e-5;
constexpr double kRenormTol = 1e-5;  // z re-expressed under other statistics: a few ulps at the input

// expect_close that also prints the measured error (these numbers go into reports).
void check(const Tensor& a, const Tensor& ref, double tol, const std::string& what) {
  expect_close(a, ref, tol, what);
  if (a.numel() == ref.numel()) {
    const test::Diff d = test::compare(a.f32(), ref.f32(), a.numel());
    std::printf("[ measured ] %-34s max|d| %.3g  rel %.3g  (tol %.0e)\n", what.c_str(), d.max_abs, d.rel(), tol);
  }
}

std::unique_ptr<TensorFile> open_data(const std::string& name) {
  auto f = open_tensor_file(test::data_path(name));
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  return f.is_ok() ? std::move(f).value() : nullptr;
}

const VaeDecoder& tiny() {
  static VaeDecoder d = VaeDecoder::load(test::data_path("vae/vae_tiny_decoder.safetensors")).value();
  return d;
}

Tensor golden(const std::string& name) {
  static auto g = open_data("vae/vae_tiny_golden.safetensors");
  return squeeze0(g->tensor_f32(name).value());
}

Tensor random_latent(Shape s, uint32_t seed) {
  Tensor z = Tensor::create(DType::f32, std::move(s)).value();
  std::mt19937 rng(seed);
  std::normal_distribution<float> n;
  for (int64_t i = 0; i < z.numel(); ++i) z.f32()[i] = n(rng);
  return z;
}

TEST(VaeDecoder, LoadsTinyConfigFromMetadata) {
  const VaeConfig& c = tiny().config();
  EXPECT_EQ(c.dim, 16);
  EXPECT_EQ(c.z_dim, 16);
  EXPECT_EQ(c.normalization_source, "wan2.1 constants");
  EXPECT_EQ(tiny().output_frames(3), 9);
  EXPECT_EQ(tiny().spatial_factor(), 8);
  EXPECT_EQ(tiny().halo(), 13);
}

TEST(VaeDecoder, MatchesOfficialGolden) {
  auto r = decode_all(tiny(), golden("in.z"), 0, true);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  check(r.video, golden("out.video"), kGoldenTol, "out.video");
  check(r.stage("decoder.head"), golden("out.video_preclamp"), kGoldenTol, "out.video_preclamp");
  check(r.stage("conv2"), golden("stage.after_conv2"), kGoldenTol, "stage.after_conv2");
  check(r.stage("decoder.conv1"), golden("stage.after_conv_in"), kGoldenTol, "stage.after_conv_in");
  check(r.stage("decoder.middle.2"), golden("stage.after_middle"), kGoldenTol, "stage.after_middle");
  for (const char* k : {"3", "7", "11"}) {
    check(r.stage(std::string("decoder.upsamples.") + k), golden(std::string("stage.after_upsamples_") + k),
                 kGoldenTol, std::string("stage.after_upsamples_") + k);
  }
  // The golden really is clamped somewhere, so the clamp is exercised.
  Tensor pre = golden("out.video_preclamp");
  bool clamped = false;
  for (int64_t i = 0; i < pre.numel(); ++i) clamped |= std::fabs(pre.f32()[i]) > 1.f;
  EXPECT_TRUE(clamped);
}

// The tiny end-to-end run's latent decodes to its recorded video; the uint8 conversion is the official one.
TEST(VaeDecoder, MatchesPipelineGoldenAndUint8) {
  auto g = open_data("vae/vae_pipe_golden.safetensors");
  ASSERT_TRUE(g);
  Tensor pre = g->tensor_f32("pipe.out.video_preclamp").value();  // [3, 9, 64, 96]
  Tensor u8 = g->tensor("pipe.out.video_uint8").value();
  ASSERT_EQ(u8.dtype(), DType::u8);
  std::vector<uint8_t> ours(static_cast<size_t>(pre.numel()));
  video_to_uint8(ours.data(), pre.f32(), pre.numel());
  EXPECT_EQ(std::memcmp(ours.data(), u8.raw(), ours.size()), 0) << "video_to_uint8 differs from the golden pixels";
  // frame_to_rgb8: frame t of [3, T, H, W] as interleaved [H, W, 3].
  const int64_t T = pre.dim(1), H = pre.dim(2), W = pre.dim(3), t = 4;
  std::vector<float> frame(static_cast<size_t>(3 * H * W));
  for (int64_t c = 0; c < 3; ++c) {
    std::memcpy(frame.data() + c * H * W, pre.f32() + (c * T + t) * H * W, static_cast<size_t>(H * W) * sizeof(float));
  }
  std::vector<uint8_t> rgb(static_cast<size_t>(3 * H * W));
  frame_to_rgb8(rgb.data(), frame.data(), H, W);
  for (int64_t i = 0; i < H * W; ++i) {
    for (int64_t c = 0; c < 3; ++c) {
      ASSERT_EQ(rgb[i * 3 + c], static_cast<const uint8_t*>(u8.raw())[(c * T + t) * H * W + i]) << "pixel " << i;
    }
  }

  auto r = decode_all(tiny(), g->tensor_f32("pipe.out.latent").value(), 0, true);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  check(r.stage("decoder.head"), pre, kGoldenTol, "pipe.out.video_preclamp");
  // Our pixels: a 1e-6 difference can cross a truncation boundary, so allow ±1 on a few pixels.
  std::vector<uint8_t> dec(static_cast<size_t>(r.video.numel()));
  video_to_uint8(dec.data(), r.video.f32(), r.video.numel());
  int64_t off = 0;
  for (size_t i = 0; i < dec.size(); ++i) {
    const int d = std::abs(int(dec[i]) - int(static_cast<const uint8_t*>(u8.raw())[i]));
    EXPECT_LE(d, 1) << "pixel " << i;
    off += d != 0;
  }
  EXPECT_LE(off, static_cast<int64_t>(dec.size() / 1000)) << off << " pixels off by one";
}

// Perturbing latent frame 2 leaves video frames 0..4 (from latent frames 0 and 1) bit-identical.
TEST(VaeDecoder, IsCausal) {
  vae_test::expect_causal(tiny(), golden("in.z"));
}

TEST(VaeDecoder, DiffusersNamesGiveIdenticalOutput) {
  auto src = open_data("vae/vae_tiny_decoder.safetensors");
  auto names = vae_test::diffusers_names(tiny().config());
  auto f = vae_test::transformed_copy(*src, [&](const std::string& n) { return names.at(n); },
                                       [](const Tensor& t) { return t; });
  ASSERT_TRUE(f->find("post_quant_conv.weight") && f->find("decoder.conv_in.weight"));
  auto d = VaeDecoder::load(*f);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  auto a = decode_all(tiny(), golden("in.z")), b = decode_all(*d, golden("in.z"));
  ASSERT_TRUE(b.status.is_ok()) << b.status.to_string();
  EXPECT_EQ(std::memcmp(a.video.f32(), b.video.f32(), a.video.nbytes()), 0);
}

// bf16 / f16 weights decode exactly like f32 weights holding the same (rounded) values.
TEST(VaeDecoder, HalfPrecisionWeights) {
  auto src = open_data("vae/vae_tiny_decoder.safetensors");
  for (DType dt : {DType::bf16, DType::f16}) {
    SCOPED_TRACE(dtype_name(dt));
    auto id = [](const std::string& n) { return n; };
    auto half = vae_test::transformed_copy(*src, id, [&](const Tensor& t) { return t.to(dt).value(); });
    auto rounded = vae_test::transformed_copy(*src, id, [&](const Tensor& t) {
      return t.to(dt).value().to(DType::f32).value();
    });
    auto a = VaeDecoder::load(*half), b = VaeDecoder::load(*rounded);
    ASSERT_TRUE(a.is_ok() && b.is_ok()) << a.status().to_string() << b.status().to_string();
    auto ra = decode_all(*a, golden("in.z")), rb = decode_all(*b, golden("in.z"));
    ASSERT_TRUE(ra.status.is_ok());
    EXPECT_EQ(std::memcmp(ra.video.f32(), rb.video.f32(), ra.video.nbytes()), 0);
    // And it stays near the f32 golden (weights rounded to 8 / 11 mantissa bits).
    check(ra.video, golden("out.video"), dt == DType::bf16 ? 5e-2 : 5e-3,
          std::string(dtype_name(dt)) + " weights vs f32 golden");
  }
}

// Without metadata the dim is read off the tensors; the result is the same decoder.
TEST(VaeDecoder, InfersDimWithoutMetadata) {
  auto src = open_data("vae/vae_tiny_decoder.safetensors");
  auto f = vae_test::transformed_copy(*src, [](const std::string& n) { return n; }, [](const Tensor& t) { return t; });
  f->clear_metadata();
  auto d = VaeDecoder::load(*f);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->config().dim, 16);
  auto r = decode_all(*d, golden("in.z"));
  ASSERT_TRUE(r.status.is_ok());
  check(r.video, golden("out.video"), kGoldenTol, "no-metadata decode");
}

// latents_mean/std from the metadata replace the Wan constants: re-expressing z under other statistics
// (so that z·std + mean is unchanged) gives the same video.
TEST(VaeDecoder, LatentStatisticsFromMetadata) {
  auto src = open_data("vae/vae_tiny_decoder.safetensors");
  auto f = vae_test::transformed_copy(*src, [](const std::string& n) { return n; }, [](const Tensor& t) { return t; });
  std::vector<float> m2(16), s2(16);
  std::string ms = "[", ss = "[";
  for (int c = 0; c < 16; ++c) {
    m2[c] = 0.25f * c - 2.f;
    s2[c] = 0.5f + 0.125f * c;
    ms += strfmt("%s%.9g", c ? ", " : "", m2[c]);
    ss += strfmt("%s%.9g", c ? ", " : "", s2[c]);
  }
  f->set_metadata("latents_mean", ms + "]");
  f->set_metadata("latents_std", ss + "]");
  auto d = VaeDecoder::load(*f);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->config().normalization_source, "metadata");
  Tensor z = golden("in.z");
  Tensor z2 = z.clone().value();
  const int64_t per = z.numel() / 16;
  for (int c = 0; c < 16; ++c) {
    for (int64_t i = 0; i < per; ++i) {
      const double raw = double(z.f32()[c * per + i]) * wan21_latents_std()[c] + wan21_latents_mean()[c];
      z2.f32()[c * per + i] = static_cast<float>((raw - m2[c]) / s2[c]);
    }
  }
  auto r = decode_all(*d, z2);
  ASSERT_TRUE(r.status.is_ok());
  check(r.video, golden("out.video"), kRenormTol, "decode under metadata statistics");
}

// A config other than the tiny one (smaller, fewer stages, 1 residual per stage) from metadata.
TEST(VaeDecoder, OtherConfigFromMetadata) {
  VaeConfig c;
  c.dim = 8;
  c.z_dim = 4;
  c.dim_mult = {1, 2, 2};
  c.num_res_blocks = 0;
  c.temperal_downsample = {false, true};
  c.latents_mean = {0, 0, 0, 0};
  c.latents_std = {1, 1, 1, 1};
  auto f = vae_test::random_vae_file(c, 5);
  f->set_metadata("num_res_blocks", "0");
  f->set_metadata("temperal_downsample", "[False, True]");
  f->set_metadata("latents_mean", "[0, 0, 0, 0]");
  f->set_metadata("latents_std", "[1, 1, 1, 1]");
  auto d = VaeDecoder::load(*f);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->spatial_factor(), 4);
  EXPECT_EQ(d->output_frames(3), 5);  // one temporal doubling
  auto r = decode_all(*d, random_latent({4, 3, 5, 7}, 3));
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(shape_str(r.video.shape()), "[3, 5, 20, 28]");
}

// Exact tiling equals the untiled decode. Tiny golden config (halo 13): 2x2 tiles of 15 on a 30x30 grid,
// so every tile's crop is cut on two sides. Exact tiling costs (tile + 2·halo)² / tile² of the work, so
// the many-tile cases use a narrow random config with a halo of 5.
TEST(VaeDecoder, TilingIsExact) {
  Tensor z = random_latent({16, 2, 30, 30}, 11);
  auto full = decode_all(tiny(), z);
  ASSERT_TRUE(full.status.is_ok()) << full.status.to_string();
  auto t = decode_all(tiny(), z, 15);
  ASSERT_TRUE(t.status.is_ok()) << t.status.to_string();
  check(t.video, full.video, kTileTol, "tiny VAE, tile=15 vs untiled");

  VaeConfig c;
  c.dim = 4;
  c.z_dim = 4;
  c.dim_mult = {1, 2, 2, 2};
  c.num_res_blocks = 0;
  c.latents_mean = {0, 0, 0, 0};
  c.latents_std = {1, 1, 1, 1};
  auto f = vae_test::random_vae_file(c, 21);
  f->set_metadata("num_res_blocks", "0");
  f->set_metadata("latents_mean", "[0, 0, 0, 0]");
  f->set_metadata("latents_std", "[1, 1, 1, 1]");
  auto d = VaeDecoder::load(*f);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->halo(), 5);  // 2 + (1+2)/2 + (1+2)/4 + (1+2+1)/8 = 4.75
  Tensor z4 = random_latent({4, 3, 17, 22}, 12);
  auto full4 = decode_all(*d, z4);
  ASSERT_TRUE(full4.status.is_ok());
  for (int64_t tile : {3, 4, 7, 22}) {
    auto t4 = decode_all(*d, z4, tile);
    ASSERT_TRUE(t4.status.is_ok()) << t4.status.to_string();
    check(t4.video, full4.video, kTileTol, strfmt("dim-4 VAE, tile=%lld vs untiled", (long long)tile));
  }
}

// Degenerate but valid grids: one latent frame, one latent pixel.
TEST(VaeDecoder, SmallestShapes) {
  for (Shape s : {Shape{16, 1, 1, 1}, Shape{16, 2, 1, 3}, Shape{1, 16, 1, 2, 1}}) {
    auto r = decode_all(tiny(), random_latent(s, 5));
    ASSERT_TRUE(r.status.is_ok()) << shape_str(s) << ": " << r.status.to_string();
    const int64_t F = s[s.size() - 3], H = s[s.size() - 2], W = s[s.size() - 1];
    EXPECT_EQ(shape_str(r.video.shape()), shape_str({3, 1 + 4 * (F - 1), 8 * H, 8 * W}));
    for (int64_t i = 0; i < r.video.numel(); ++i) ASSERT_LE(std::fabs(r.video.f32()[i]), 1.f);
  }
}

TEST(VaeDecoder, BadInputsGiveClearErrors) {
  auto noop = [](int64_t, const Tensor&) { return Status::ok(); };
  Status s = tiny().decode(random_latent({15, 2, 4, 4}, 1), noop);
  EXPECT_EQ(s.code(), StatusCode::invalid_argument);
  EXPECT_NE(s.message().find("expected [16, F, H, W]"), std::string::npos) << s.message();
  EXPECT_EQ(tiny().decode(random_latent({16, 4, 4}, 1), noop).code(), StatusCode::invalid_argument);
  EXPECT_EQ(tiny().decode(random_latent({2, 16, 1, 4, 4}, 1), noop).code(), StatusCode::invalid_argument);
  Tensor nan = random_latent({16, 1, 4, 4}, 1);
  nan.f32()[37] = NAN;
  s = tiny().decode(nan, noop);
  EXPECT_EQ(s.code(), StatusCode::invalid_argument);
  EXPECT_NE(s.message().find("not finite"), std::string::npos) << s.message();
  VaeDecodeOptions o;
  o.tile = -1;
  EXPECT_EQ(tiny().decode(random_latent({16, 1, 4, 4}, 1), noop, o).code(), StatusCode::invalid_argument);
  EXPECT_EQ(tiny().decode(random_latent({16, 1, 4, 4}, 1), nullptr).code(), StatusCode::invalid_argument);
  Tensor ints = Tensor::zeros(DType::i32, {16, 1, 4, 4}).value();
  EXPECT_EQ(tiny().decode(ints, noop).code(), StatusCode::invalid_argument);

  // A callback error stops the decode and comes back unchanged.
  int calls = 0;
  s = tiny().decode(random_latent({16, 3, 4, 4}, 1), [&](int64_t, const Tensor&) {
    return ++calls == 2 ? Status(StatusCode::cancelled, "stop") : Status::ok();
  });
  EXPECT_EQ(s.code(), StatusCode::cancelled);
  EXPECT_EQ(calls, 2);
}

// A torch.save .pth with the released structure at dim 4, bf16, no config anywhere: the config is
// inferred, and the decode equals the one from the same tensors in safetensors (fixture made by
// tools/testdata/make_vae_pth_fixture.py).
TEST(VaeDecoder, LoadsPthWithInferredConfig) {
  auto p = VaeDecoder::load(test::data_path("vae/vae_dim4_decoder.pth"));
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  auto s = VaeDecoder::load(test::data_path("vae/vae_dim4_decoder.safetensors"));
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(p->config().dim, 4);
  EXPECT_EQ(p->config().normalization_source, "wan2.1 constants");
  Tensor z = random_latent({16, 2, 5, 7}, 8);
  auto a = decode_all(*p, z), b = decode_all(*s, z);
  ASSERT_TRUE(a.status.is_ok() && b.status.is_ok()) << a.status.to_string();
  EXPECT_EQ(shape_str(a.video.shape()), "[3, 5, 40, 56]");
  EXPECT_EQ(std::memcmp(a.video.f32(), b.video.f32(), a.video.nbytes()), 0);
}

// An explicit config file is used (and checked against the tensors).
TEST(VaeDecoder, ConfigFileOption) {
  const std::string dir = std::string(VDIT_BINARY_DIR) + "/test_tmp_vae_";
  {
    std::ofstream(dir + "good.json") << R"({"_class_name": "AutoencoderKLWan", "base_dim": 16, "z_dim": 16,
        "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2, "temperal_downsample": [false, true, true],
        "latents_mean": [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0], "latents_std": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]})";
    std::ofstream(dir + "bad.json") << R"({"base_dim": 24})";
  }
  VaeLoadOptions o;
  o.config_path = dir + "good.json";
  auto d = VaeDecoder::load(test::data_path("vae/vae_tiny_decoder.safetensors"), o);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->config().normalization_source, "config");  // the file has no statistics in its metadata
  EXPECT_EQ(d->config().latents_std[3], 1.f);
  o.config_path = dir + "bad.json";
  auto e = VaeDecoder::load(test::data_path("vae/vae_tiny_decoder.safetensors"), o);
  EXPECT_EQ(e.status().code(), StatusCode::format_error);
  EXPECT_NE(e.status().message().find("dim=24"), std::string::npos) << e.status().message();
}

TEST(VaeDecoder, BadWeightFilesGiveClearErrors) {
  auto src = open_data("vae/vae_tiny_decoder.safetensors");
  auto id = [](const std::string& n) { return n; };
  auto keep = [](const Tensor& t) { return t; };
  // A missing tensor is named.
  auto f = std::make_unique<vae_test::MemoryTensorFile>("missing");
  for (const auto& e : src->entries()) {
    if (e.name != "decoder.upsamples.4.shortcut.weight") f->add(e.name, src->tensor(e.name).value());
  }
  for (const auto& [k, v] : src->metadata()) f->set_metadata(k, v);
  auto d = VaeDecoder::load(*f);
  EXPECT_EQ(d.status().code(), StatusCode::not_found);
  EXPECT_NE(d.status().message().find("decoder.upsamples.4.shortcut.weight"), std::string::npos) << d.status().message();

  // Metadata that disagrees with the tensors: the shape mismatch is reported with both shapes.
  auto g = vae_test::transformed_copy(*src, id, keep);
  g->set_metadata("dim_mult", "[1, 2, 2, 4]");
  d = VaeDecoder::load(*g);
  EXPECT_EQ(d.status().code(), StatusCode::format_error);
  EXPECT_NE(d.status().message().find("expects"), std::string::npos) << d.status().message();

  // Metadata asking for fewer residual blocks leaves decoder tensors unexplained.
  auto h = vae_test::transformed_copy(*src, id, keep);
  h->set_metadata("num_res_blocks", "1");
  EXPECT_FALSE(VaeDecoder::load(*h).is_ok());

  // Not a VAE at all.
  auto dit = vae_test::MemoryTensorFile("dit.safetensors");
  dit.add("patch_embedding.weight", Tensor::zeros(DType::f32, {4, 16, 1, 2, 2}).value());
  d = VaeDecoder::load(dit);
  EXPECT_EQ(d.status().code(), StatusCode::not_found);
  EXPECT_NE(d.status().message().find("not a Wan VAE"), std::string::npos) << d.status().message();

  // A missing file and a bad config path.
  EXPECT_FALSE(VaeDecoder::load("/nonexistent/vae.safetensors").is_ok());
  VaeLoadOptions lo;
  lo.config_path = "/nonexistent/config.json";
  auto e = VaeDecoder::load(test::data_path("vae/vae_tiny_decoder.safetensors"), lo);
  EXPECT_EQ(e.status().code(), StatusCode::not_found);
  EXPECT_NE(e.status().message().find("config.json"), std::string::npos) << e.status().message();
}

}  // namespace
}  // namespace vdit::vae
