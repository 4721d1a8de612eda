// Output path rules: extension -> kind and container, folder detection, and check_output's
// up-front errors (unknown extension, missing or unwritable folder, frame count vs kind, CRF range,
// non-empty frame folder). Also the temporary-name scheme (real extension last).
#include <filesystem>

#include "io/frame_sink.h"
#include "io/image_writer.h"
#include "io/video_writer.h"
#include "tests/media/media_test_util.h"

namespace vdit::test {
namespace {

namespace fs = std::filesystem;

TEST(OutputTarget, ExtensionPicksKindAndContainer) {
  struct Case {
    const char* path;
    OutputKind kind;
    const char* container;
  };
  const Case cases[] = {
      {"a.mp4", OutputKind::video, "mp4"},
      {"dir/b.MKV", OutputKind::video, "matroska"},
      {"c.webm", OutputKind::video, "webm"},
      {"d.png", OutputKind::image, "png"},
      {"e.JPG", OutputKind::image, "jpg"},
      {"f.jpeg", OutputKind::image, "jpg"},
      {"frames/", OutputKind::frame_directory, "png"},
      {"frames", OutputKind::frame_directory, "png"},
  };
  for (const auto& c : cases) {
    auto t = classify_output(c.path);
    ASSERT_TRUE(t.is_ok()) << c.path << ": " << t.status().to_string();
    EXPECT_EQ(t->kind, c.kind) << c.path;
    EXPECT_EQ(t->container, c.container) << c.path;
  }
  EXPECT_EQ(classify_output("frames/")->path, "frames");
  auto bad = classify_output("clip.avi");
  EXPECT_EQ(bad.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(bad.status().message().find("\".avi\""), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find(".mp4"), std::string::npos) << bad.status().message();
  EXPECT_EQ(classify_output("").status().code(), StatusCode::invalid_argument);
}

TEST(OutputTarget, ExistingFolderIsAFrameFolder) {
  TempFolder dir;
  fs::create_directory(dir / "looks_like.mp4");
  auto t = classify_output(dir / "looks_like.mp4");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->kind, OutputKind::frame_directory);
}

TEST(CheckOutput, AcceptsGoodPaths) {
  if (!video_writer_available() || !image_io_available()) GTEST_SKIP() << "built without FFmpeg or OpenCV";
  TempFolder dir;
  EXPECT_TRUE(check_output(dir / "a.mp4", 81, {}).is_ok());
  EXPECT_TRUE(check_output(dir / "a.webm", 81, {}).is_ok());
  EXPECT_TRUE(check_output(dir / "a.png", 1, {}).is_ok());
  EXPECT_TRUE(check_output(dir / "frames/", 81, {}).is_ok());
  EXPECT_TRUE(dir.entries().empty());  // checking writes nothing that stays
}

TEST(CheckOutput, RefusesWithClearMessages) {
  if (!video_writer_available() || !image_io_available()) GTEST_SKIP() << "built without FFmpeg or OpenCV";
  TempFolder dir;
  auto expect_error = [](const Status& s, StatusCode code, const std::string& needle) {
    EXPECT_EQ(s.code(), code) << s.to_string();
    EXPECT_NE(s.message().find(needle), std::string::npos) << "message lacks \"" << needle << "\": " << s.message();
  };
  expect_error(check_output(dir / "a.gif", 81, {}), StatusCode::invalid_argument, "unknown output extension");
  expect_error(check_output(dir / "missing/a.mp4", 81, {}), StatusCode::not_found, "does not exist");
  expect_error(check_output("/proc/vdit_test.mp4", 81, {}), StatusCode::io_error, "not writable");
  expect_error(check_output(dir / "a.png", 17, {}), StatusCode::invalid_argument, "one frame");
  MediaOptions crf;
  crf.crf = 60;
  expect_error(check_output(dir / "a.mp4", 81, crf), StatusCode::invalid_argument, "0..51");
  EXPECT_TRUE(check_output(dir / "a.webm", 81, crf).is_ok());  // VP9 goes to 63
  fs::create_directory(dir / "full");
  std::FILE* f = std::fopen((dir / "full/x").c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  expect_error(check_output(dir / "full/", 81, {}), StatusCode::invalid_argument, "not an empty folder");
  expect_error(check_output(dir / "a.mp4", 0, {}), StatusCode::invalid_argument, "at least one");
}

TEST(TemporaryPath, KeepsTheRealExtensionLast) {
  std::string a = temporary_path_for("/x/y/clip.mp4", false);
  std::string b = temporary_path_for("/x/y/clip.mp4", false);
  EXPECT_NE(a, b);  // unique per call
  EXPECT_EQ(fs::path(a).extension(), ".mp4");
  EXPECT_EQ(fs::path(a).parent_path(), "/x/y");
  EXPECT_EQ(fs::path(a).filename().string().rfind("clip.tmp-", 0), 0u) << a;
  std::string d = temporary_path_for("/x/frames", true);
  EXPECT_EQ(d.rfind("/x/frames.tmp-", 0), 0u) << d;
}

}  // namespace
}  // namespace vdit::test
