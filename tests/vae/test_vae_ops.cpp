// The VAE's per-frame kernels against their naive references on seeded random data: causal conv with 0, 1
// or 2 history frames, 1x1 / 3x3 / (3,1,1) kernels, nearest-x2 input, sizes that are not multiples of
// anything and inputs big enough to take several row bands; channel RMS norm with and without SiLU.
#include <random>

#include "dit/vae/vae_ops.h"
#include "tests/harness/test_util.h"

namespace vdit::vae {
namespace {

// Tolerances (max|Δ|/max|ref|): f32 GEMM with K up to 27·Ci terms against double accumulation; the error
// grows like √K·eps ≈ 1e-6 here, so 1e-5 leaves a margin but catches any wrong tap (errors of O(1)).
constexpr double kConvTol = 1e-5;
constexpr double kNormTol = 1e-6;  // one division and a few products per element

Tensor random_tensor(Shape s, std::mt19937* rng, float scale = 1.f) {
  Tensor t = Tensor::create(DType::f32, std::move(s)).value();
  std::normal_distribution<float> n(0.f, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = n(*rng);
  return t;
}

struct ConvCase {
  int64_t co, ci, kt, kh, kw, H, W;
  int up;
  int history;  // frames before the current one that exist (the rest are causal zero padding)
  std::string str() const {
    return strfmt("conv(co=%lld ci=%lld k=(%lld,%lld,%lld) H=%lld W=%lld up=%d history=%d)", (long long)co,
                  (long long)ci, (long long)kt, (long long)kh, (long long)kw, (long long)H, (long long)W, up, history);
  }
};

TEST(VaeOps, ConvMatchesReference) {
  const ConvCase cases[] = {
      {5, 3, 3, 3, 3, 7, 9, 0, 0},   {5, 3, 3, 3, 3, 7, 9, 0, 1},   {5, 3, 3, 3, 3, 7, 9, 0, 2},
      {16, 16, 1, 1, 1, 4, 6, 0, 0}, {12, 7, 1, 1, 1, 5, 3, 0, 0},  // pointwise (conv2, shortcut)
      {8, 4, 3, 1, 1, 5, 6, 0, 1},   {8, 4, 3, 1, 1, 5, 6, 0, 2},   // time_conv (3,1,1)
      {6, 8, 1, 3, 3, 5, 7, 1, 0},   {3, 16, 3, 3, 3, 1, 1, 0, 2},  // resample conv on x2 input; 1x1 frame
      {7, 5, 3, 3, 3, 2, 13, 1, 2},  // upsampled 3D conv (not used by Wan, exercises the path)
      {24, 64, 3, 3, 3, 60, 40, 0, 2},  // 2 row bands of 48 + 12 rows
      {16, 64, 1, 3, 3, 40, 44, 1, 0},  // upsampled, bands of 22, 22, 22, 14 rows
  };
  std::mt19937 rng(1234);
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(c.str());
    Tensor w = random_tensor({c.co, c.ci, c.kt, c.kh, c.kw}, &rng, 0.3f);
    Tensor b = random_tensor({c.co}, &rng);
    std::vector<Tensor> in;
    const float* frames[3] = {nullptr, nullptr, nullptr};
    for (int64_t t = 0; t < c.kt; ++t) {
      in.push_back(random_tensor({c.ci, c.H, c.W}, &rng));
      if (t >= c.kt - 1 - c.history) frames[t] = in.back().f32();
    }
    auto cw = make_conv_weights(w, b, "test");
    ASSERT_TRUE(cw.is_ok()) << cw.status().to_string();
    const int64_t Ho = c.H << c.up, Wo = c.W << c.up;
    Tensor out = Tensor::create(DType::f32, {c.co, Ho, Wo}).value();
    Tensor ref = Tensor::create(DType::f32, {c.co, Ho, Wo}).value();
    std::fill(out.f32(), out.f32() + out.numel(), NAN);  // every element must be written
    ASSERT_TRUE(conv_frame(out.f32(), *cw, frames, c.H, c.W, c.up).is_ok());
    conv_frame_reference(ref.f32(), w.f32(), b.f32(), c.co, c.ci, c.kt, c.kh, c.kw, frames, c.H, c.W, c.up);
    test::expect_close(out, ref, kConvTol, c.str());
  }
}

TEST(VaeOps, ConvWeightsFromBf16AndConv2dShapes) {
  std::mt19937 rng(7);
  Tensor w = random_tensor({4, 3, 3, 3}, &rng);  // Conv2d [Co, Ci, kh, kw]
  Tensor b = random_tensor({4}, &rng);
  auto cw = make_conv_weights(w.to(DType::bf16).value(), b.to(DType::bf16).value(), "bf16 conv");
  ASSERT_TRUE(cw.is_ok()) << cw.status().to_string();
  EXPECT_EQ(cw->kt, 1);
  EXPECT_EQ(cw->kh, 3);
  EXPECT_EQ(cw->w.dtype(), DType::f32);
  EXPECT_EQ(cw->w.f32()[0], bf16_to_f32(f32_to_bf16(w.f32()[0])));
  // Even kernels and mismatched biases are rejected with a message.
  auto bad = make_conv_weights(random_tensor({4, 3, 2, 2}, &rng), b, "even kernel");
  EXPECT_EQ(bad.status().code(), StatusCode::unsupported);
  auto bad_bias = make_conv_weights(w, random_tensor({5}, &rng), "bad bias");
  EXPECT_EQ(bad_bias.status().code(), StatusCode::format_error);
  EXPECT_NE(bad_bias.status().message().find("bad bias"), std::string::npos);
}

TEST(VaeOps, RmsNormMatchesReference) {
  std::mt19937 rng(99);
  for (int64_t C : {3, 16, 96}) {
    for (int64_t N : {1, 255, 256, 700}) {
      for (bool silu : {false, true}) {
        const std::string what = strfmt("rms_norm_channels(C=%lld, N=%lld, silu=%d)", (long long)C, (long long)N, silu);
        Tensor x = random_tensor({C, N}, &rng, 3.f);
        for (int64_t c = 0; c < C; ++c) x.f32()[c * N] = 0.f;  // an all-zero pixel: eps branch, no NaN
        Tensor g = random_tensor({C}, &rng);
        Tensor y = Tensor::create(DType::f32, {C, N}).value();
        Tensor ref = Tensor::create(DType::f32, {C, N}).value();
        rms_norm_channels(y.f32(), x.f32(), g.f32(), C, N, silu);
        rms_norm_channels_reference(ref.f32(), x.f32(), g.f32(), C, N, silu);
        test::expect_close(y, ref, kNormTol, what);
      }
    }
  }
}

TEST(VaeOps, FrameHistoryKeepsLastTwo) {
  FrameHistory h;
  Tensor a = Tensor::zeros(DType::f32, {1}).value(), b = a.clone().value(), c = a.clone().value();
  h.push(a);
  EXPECT_EQ(h.count, 1);
  h.push(b);
  h.push(c);
  EXPECT_EQ(h.count, 2);
  EXPECT_EQ(h.frames[0].raw(), b.raw());
  EXPECT_EQ(h.frames[1].raw(), c.raw());
  h.clear();
  EXPECT_EQ(h.count, 0);
}

}  // namespace
}  // namespace vdit::vae
