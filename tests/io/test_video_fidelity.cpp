// compare_videos (PSNR, SSIM, largest difference) on videos with known answers, its argument checks, and
// MemoryFrameSink (keeps frames, checks sizes, streams them into another sink).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "io/memory_sink.h"
#include "io/video_fidelity.h"

namespace vdit {
namespace {

std::vector<uint8_t> random_video(int w, int h, int t, uint32_t seed, int lo = 0, int hi = 255) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<uint8_t> v(static_cast<size_t>(w) * h * 3 * t);
  for (auto& x : v) x = static_cast<uint8_t>(d(rng));
  return v;
}

TEST(VideoFidelity, IdenticalVideos) {
  const auto v = random_video(32, 24, 3, 1);
  auto f = compare_videos(v, v, 32, 24, 3);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_TRUE(std::isinf(f->psnr_db));
  EXPECT_NEAR(f->ssim, 1.0, 1e-12);
  EXPECT_EQ(f->max_abs_diff, 0);
}

TEST(VideoFidelity, ConstantOffsetHasTheExactPsnr) {
  const auto ref = random_video(40, 30, 2, 2, 10, 240);
  auto test = ref;
  for (auto& x : test) x = static_cast<uint8_t>(x + 2);  // MSE 4
  auto f = compare_videos(test, ref, 40, 30, 2);
  ASSERT_TRUE(f.is_ok());
  EXPECT_NEAR(f->psnr_db, 10.0 * std::log10(255.0 * 255.0 / 4.0), 1e-9);
  EXPECT_EQ(f->max_abs_diff, 2);
  EXPECT_LT(f->ssim, 1.0);  // only the luminance term moves
  EXPECT_GT(f->ssim, 0.99);
}

TEST(VideoFidelity, UnrelatedNoiseHasNoStructuralSimilarity) {
  auto f = compare_videos(random_video(48, 48, 2, 3), random_video(48, 48, 2, 4), 48, 48, 2);
  ASSERT_TRUE(f.is_ok());
  EXPECT_LT(std::fabs(f->ssim), 0.05);
  EXPECT_LT(f->psnr_db, 10.0);
}

TEST(VideoFidelity, BadSizesAreErrors) {
  const auto v = random_video(16, 16, 2, 5);
  EXPECT_EQ(compare_videos(v, v, 16, 16, 3).status().code(), StatusCode::invalid_argument);  // too few bytes
  EXPECT_EQ(compare_videos(v, random_video(16, 16, 1, 6), 16, 16, 2).status().code(), StatusCode::invalid_argument);
  const auto small = random_video(8, 8, 1, 7);
  auto f = compare_videos(small, small, 8, 8, 1);
  EXPECT_EQ(f.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(f.status().message().find("SSIM window"), std::string::npos) << f.status().message();
}

TEST(MemoryFrameSink, KeepsFramesAndStreamsThemOn) {
  MemoryFrameSink a;
  ASSERT_TRUE(a.open(4, 2, 16, 2).is_ok());
  const auto v = random_video(4, 2, 2, 8);
  ASSERT_TRUE(a.write(v.data(), 24).is_ok());
  EXPECT_EQ(a.write(v.data(), 23).code(), StatusCode::invalid_argument);
  ASSERT_TRUE(a.write(v.data() + 24, 24).is_ok());
  ASSERT_TRUE(a.finish().is_ok());
  EXPECT_EQ(a.frames_written(), 2);
  EXPECT_EQ(a.bytes(), v);
  MemoryFrameSink b;
  ASSERT_TRUE(a.write_to(&b).is_ok());
  EXPECT_EQ(b.bytes(), v);
  EXPECT_EQ(b.width(), 4);
  EXPECT_EQ(b.fps(), 16);
  a.abort();
  EXPECT_EQ(a.frames_written(), 0);
  MemoryFrameSink c;
  EXPECT_EQ(c.write(v.data(), 24).code(), StatusCode::invalid_argument);  // before open
}

}  // namespace
}  // namespace vdit
