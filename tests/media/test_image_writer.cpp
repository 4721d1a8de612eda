// OpenCV image output: PNG round trip exact (odd sizes included), JPEG close, the one-image sink's
// frame-count rules, and the numbered-PNG folder sink (exact frames, temporary folder renamed,
// aborted/destroyed sinks leave nothing, existing non-empty folders refused).
#include <filesystem>

#include "io/frame_sink.h"
#include "io/image_writer.h"
#include "tests/media/media_test_util.h"

namespace vdit::test {
namespace {

namespace fs = std::filesystem;

// Image tests need OpenCV; a build without it is checked by WithoutOpencvSaysWhatIsMissing instead.
#define SKIP_WITHOUT_OPENCV() \
  if (!image_io_available()) GTEST_SKIP() << "built without OpenCV"

TEST(ImageWriter, PngRoundTripIsExactAtOddSizes) {
  SKIP_WITHOUT_OPENCV();
  TempFolder dir;
  for (auto [w, h] : {std::pair{128, 96}, std::pair{33, 17}, std::pair{1, 1}}) {
    auto rgb = moving_shapes_frame(w, h, 3);
    std::string path = dir / strfmt("img_%dx%d.png", w, h);
    Status s = write_image_rgb(path, rgb.data(), w, h);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    auto back = read_image_rgb(path);
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(back->width, w);
    EXPECT_EQ(back->height, h);
    EXPECT_TRUE(back->pixels == rgb) << "PNG round trip is not exact at " << w << "x" << h;
  }
  EXPECT_EQ(dir.entries().size(), 3u);  // no temporaries left
}

TEST(ImageWriter, ChannelOrderIsRgb) {
  SKIP_WITHOUT_OPENCV();
  TempFolder dir;
  const uint8_t red[3] = {255, 0, 0};
  ASSERT_TRUE(write_image_rgb(dir / "red.png", red, 1, 1).is_ok());
  auto back = read_image_rgb(dir / "red.png");
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(back->pixels, (std::vector<uint8_t>{255, 0, 0}));
}

TEST(ImageWriter, JpegRoundTripIsClose) {
  SKIP_WITHOUT_OPENCV();
  TempFolder dir;
  auto rgb = moving_shapes_frame(128, 96, 5);
  ASSERT_TRUE(write_image_rgb(dir / "a.jpg", rgb.data(), 128, 96).is_ok());
  auto back = read_image_rgb(dir / "a.jpg");
  ASSERT_TRUE(back.is_ok());
  double p = psnr_from_mse(mse(back->pixels, rgb));
  EXPECT_GE(p, 30.0);
  std::printf("JPEG quality 95, 128x96: PSNR %.2f dB\n", p);
}

TEST(ImageSink, HoldsExactlyOneFrame) {
  SKIP_WITHOUT_OPENCV();
  TempFolder dir;
  auto sink = create_frame_sink(dir / "one.png", {});
  ASSERT_TRUE(sink.is_ok());
  Status s = (*sink)->open(16, 16, 16, 17);
  EXPECT_EQ(s.code(), StatusCode::invalid_argument);
  EXPECT_NE(s.message().find("one frame"), std::string::npos) << s.message();
  ASSERT_TRUE((*sink)->open(16, 16, 16, 1).is_ok());
  auto rgb = moving_shapes_frame(16, 16, 0);
  ASSERT_TRUE((*sink)->write(rgb.data(), rgb.size()).is_ok());
  EXPECT_FALSE(fs::exists(dir / "one.png"));  // only under the temporary name until finish()
  EXPECT_EQ((*sink)->write(rgb.data(), rgb.size()).code(), StatusCode::invalid_argument);
  ASSERT_TRUE((*sink)->finish().is_ok());
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"one.png"});
}

TEST(ImageSink, AbortAndDestructorLeaveNothing) {
  SKIP_WITHOUT_OPENCV();
  TempFolder dir;
  auto rgb = moving_shapes_frame(16, 16, 0);
  {
    auto sink = create_frame_sink(dir / "a.png", {});
    ASSERT_TRUE((*sink)->open(16, 16, 16, 1).is_ok());
    ASSERT_TRUE((*sink)->write(rgb.data(), rgb.size()).is_ok());
    EXPECT_EQ(dir.entries().size(), 1u);
    (*sink)->abort();
    EXPECT_TRUE(dir.entries().empty());
  }
  {
    auto sink = create_frame_sink(dir / "b.jpg", {});
    ASSERT_TRUE((*sink)->open(16, 16, 16, 1).is_ok());
    ASSERT_TRUE((*sink)->write(rgb.data(), rgb.size()).is_ok());
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(FrameDirectorySink, WritesNumberedExactPngs) {
  SKIP_WITHOUT_OPENCV();
  TempFolder dir;
  const std::string out = dir / "frames";
  auto sink = create_frame_sink(out + "/", {});
  ASSERT_TRUE(sink.is_ok());
  ASSERT_TRUE((*sink)->open(31, 21, 16, 5).is_ok());
  std::vector<std::vector<uint8_t>> written;
  for (int t = 0; t < 5; ++t) {
    written.push_back(moving_shapes_frame(31, 21, t));
    ASSERT_TRUE((*sink)->write(written.back().data(), written.back().size()).is_ok());
  }
  EXPECT_FALSE(fs::exists(out));  // frames go to a temporary folder until finish()
  ASSERT_TRUE((*sink)->finish().is_ok());
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"frames"});
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(out)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  ASSERT_EQ(names, (std::vector<std::string>{"frame_00000.png", "frame_00001.png", "frame_00002.png", "frame_00003.png",
                                             "frame_00004.png"}));
  for (int t = 0; t < 5; ++t) {
    auto back = read_image_rgb(out + "/" + names[t]);
    ASSERT_TRUE(back.is_ok());
    EXPECT_TRUE(back->pixels == written[t]) << names[t];
  }
}

TEST(FrameDirectorySink, ReplacesOnlyAnEmptyFolder) {
  SKIP_WITHOUT_OPENCV();
  TempFolder dir;
  auto rgb = moving_shapes_frame(8, 8, 0);
  fs::create_directory(dir / "empty");
  auto sink = create_frame_sink(dir / "empty", {});
  ASSERT_TRUE((*sink)->open(8, 8, 16, 1).is_ok());
  ASSERT_TRUE((*sink)->write(rgb.data(), rgb.size()).is_ok());
  ASSERT_TRUE((*sink)->finish().is_ok());
  EXPECT_TRUE(fs::exists(dir / "empty/frame_00000.png"));

  auto again = create_frame_sink(dir / "empty", {});
  Status s = (*again)->open(8, 8, 16, 1);
  EXPECT_EQ(s.code(), StatusCode::invalid_argument);
  EXPECT_NE(s.message().find("not an empty folder"), std::string::npos) << s.message();
}

TEST(FrameDirectorySink, AbortAndDestructorLeaveNothing) {
  SKIP_WITHOUT_OPENCV();
  TempFolder dir;
  auto rgb = moving_shapes_frame(8, 8, 0);
  {
    auto sink = create_frame_sink(dir / "f1/", {});
    ASSERT_TRUE((*sink)->open(8, 8, 16, 3).is_ok());
    ASSERT_TRUE((*sink)->write(rgb.data(), rgb.size()).is_ok());
    (*sink)->abort();
    EXPECT_TRUE(dir.entries().empty());
  }
  {
    auto sink = create_frame_sink(dir / "f2/", {});
    ASSERT_TRUE((*sink)->open(8, 8, 16, 3).is_ok());
    ASSERT_TRUE((*sink)->write(rgb.data(), rgb.size()).is_ok());
    EXPECT_EQ(dir.entries().size(), 1u);
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(ImageWriterMissing, WithoutOpencvSaysWhatIsMissing) {
  if (image_io_available()) GTEST_SKIP() << "built with OpenCV";
  TempFolder dir;
  const uint8_t px[3] = {1, 2, 3};
  Status s = write_image_rgb(dir / "x.png", px, 1, 1);
  EXPECT_EQ(s.code(), StatusCode::unsupported);
  EXPECT_NE(s.message().find("apt-get install"), std::string::npos) << s.message();
  EXPECT_EQ(check_output(dir / "x.png", 1, {}).code(), StatusCode::unsupported);
  EXPECT_EQ(check_output(dir / "frames/", 5, {}).code(), StatusCode::unsupported);
  EXPECT_TRUE(dir.entries().empty());
}

}  // namespace
}  // namespace vdit::test
