// FFmpeg video writer: MP4/MKV/WebM round trips through the FFmpeg reader (frame count, size, pixel
// format, PSNR against the uint8 input), CRF plumbing, odd sizes, misuse, abort/destructor cleanup,
// and a child process killed mid-encode that must leave no file under the final name.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "io/frame_sink.h"
#include "io/video_reader.h"
#include "io/video_writer.h"
#include "tests/media/media_test_util.h"

namespace vdit::test {
namespace {

namespace fs = std::filesystem;

constexpr int kW = 128, kH = 96, kFrames = 17;

// Video tests need FFmpeg; a build without it is checked by WithoutFfmpegSaysWhatIsMissing instead.
#define SKIP_WITHOUT_FFMPEG() \
  if (!video_writer_available()) GTEST_SKIP() << "built without FFmpeg"

struct RoundTrip {
  DecodedVideo video;
  double psnr = 0;  // over all frames and channels
  double worst_frame_psnr = 0;
  uintmax_t bytes = 0;
};

// Writes the moving-shapes clip to `path`, reads it back and measures PSNR against what was written.
RoundTrip round_trip(const std::string& path, const MediaOptions& options) {
  RoundTrip out;
  auto sink = create_frame_sink(path, options);
  EXPECT_TRUE(sink.is_ok()) << sink.status().to_string();
  if (!sink) return out;
  Status s = (*sink)->open(kW, kH, 16, kFrames);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  std::vector<std::vector<uint8_t>> written;
  for (int t = 0; t < kFrames && s.is_ok(); ++t) {
    written.push_back(moving_shapes_frame(kW, kH, t));
    s = (*sink)->write(written.back().data(), written.back().size());
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  }
  s = (*sink)->finish();
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  auto video = read_video_rgb(path);
  EXPECT_TRUE(video.is_ok()) << video.status().to_string();
  if (!video) return out;
  out.video = std::move(*video);
  out.bytes = fs::file_size(path);
  if (out.video.frames.size() != written.size()) return out;
  double total = 0;
  out.worst_frame_psnr = INFINITY;
  for (size_t i = 0; i < written.size(); ++i) {
    double m = mse(out.video.frames[i], written[i]);
    total += m;
    out.worst_frame_psnr = std::min(out.worst_frame_psnr, psnr_from_mse(m));
  }
  out.psnr = psnr_from_mse(total / written.size());
  return out;
}

TEST(VideoWriter, Mp4RoundTripAtDefaultCrf) {
  SKIP_WITHOUT_FFMPEG();
  TempFolder dir;
  RoundTrip r = round_trip(dir / "clip.mp4", {});
  ASSERT_EQ(r.video.frames.size(), static_cast<size_t>(kFrames));
  EXPECT_EQ(r.video.width, kW);
  EXPECT_EQ(r.video.height, kH);
  EXPECT_EQ(r.video.codec, "h264");
  EXPECT_EQ(r.video.pixel_format, "yuv420p");
  EXPECT_NEAR(r.video.fps, 16.0, 1e-6);
  EXPECT_GE(r.psnr, 38.0);
  EXPECT_GE(r.worst_frame_psnr, 36.0);  // frames where the shapes overlap carry the most chroma edges
  std::printf("mp4 H.264 default CRF 10, %dx%d x %d frames: PSNR %.2f dB (worst frame %.2f dB), %ju bytes\n", kW, kH,
              kFrames, r.psnr, r.worst_frame_psnr, r.bytes);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"clip.mp4"});  // no temporary left behind
}

TEST(VideoWriter, CrfIsApplied) {
  SKIP_WITHOUT_FFMPEG();
  TempFolder dir;
  RoundTrip fine = round_trip(dir / "fine.mp4", {});
  MediaOptions coarse_options;
  coarse_options.crf = 40;
  RoundTrip coarse = round_trip(dir / "coarse.mp4", coarse_options);
  ASSERT_EQ(coarse.video.frames.size(), static_cast<size_t>(kFrames));
  EXPECT_LT(coarse.bytes, fine.bytes);
  EXPECT_LT(coarse.psnr, fine.psnr - 3);
  std::printf("mp4 CRF 40: PSNR %.2f dB, %ju bytes (CRF 10: %.2f dB, %ju bytes)\n", coarse.psnr, coarse.bytes,
              fine.psnr, fine.bytes);
}

TEST(VideoWriter, MkvAndWebmRoundTrip) {
  SKIP_WITHOUT_FFMPEG();
  TempFolder dir;
  RoundTrip mkv = round_trip(dir / "clip.mkv", {});
  ASSERT_EQ(mkv.video.frames.size(), static_cast<size_t>(kFrames));
  EXPECT_EQ(mkv.video.codec, "h264");
  EXPECT_GE(mkv.psnr, 38.0);
  RoundTrip webm = round_trip(dir / "clip.webm", {});
  ASSERT_EQ(webm.video.frames.size(), static_cast<size_t>(kFrames));
  EXPECT_EQ(webm.video.codec, "vp9");
  EXPECT_EQ(webm.video.width, kW);
  EXPECT_EQ(webm.video.height, kH);
  EXPECT_GE(webm.psnr, 36.5);
  std::printf("mkv H.264 CRF 10: PSNR %.2f dB; webm VP9 CRF 15: PSNR %.2f dB, %ju bytes\n", mkv.psnr, webm.psnr,
              webm.bytes);
}

TEST(VideoWriter, OddSizeIsRefusedClearly) {
  SKIP_WITHOUT_FFMPEG();
  TempFolder dir;
  auto sink = create_frame_sink(dir / "odd.mp4", {});
  ASSERT_TRUE(sink.is_ok());
  Status s = (*sink)->open(127, 96, 16, 5);
  EXPECT_EQ(s.code(), StatusCode::invalid_argument);
  EXPECT_NE(s.message().find("even width and height"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("127x96"), std::string::npos) << s.message();
  EXPECT_TRUE(dir.entries().empty());
}

TEST(VideoWriter, MisuseReturnsErrors) {
  SKIP_WITHOUT_FFMPEG();
  TempFolder dir;
  auto sink = create_frame_sink(dir / "x.mp4", {});
  ASSERT_TRUE(sink.is_ok());
  auto frame = moving_shapes_frame(kW, kH, 0);
  EXPECT_EQ((*sink)->write(frame.data(), frame.size()).code(), StatusCode::invalid_argument);  // not open
  ASSERT_TRUE((*sink)->open(kW, kH, 16, 3).is_ok());
  EXPECT_EQ((*sink)->open(kW, kH, 16, 3).code(), StatusCode::invalid_argument);                    // twice
  EXPECT_EQ((*sink)->write(frame.data(), frame.size() - 1).code(), StatusCode::invalid_argument);  // wrong size
  EXPECT_EQ((*sink)->finish().code(), StatusCode::invalid_argument);                               // no frames
  EXPECT_EQ((*sink)->open(kW, kH, 0, 3).code(), StatusCode::invalid_argument);
  MediaOptions bad;
  bad.crf = 52;
  auto refused = create_frame_sink(dir / "y.mp4", bad);
  EXPECT_EQ(refused.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(refused.status().message().find("0..51"), std::string::npos) << refused.status().message();
}

TEST(VideoWriter, AbortAndDestructorRemoveTheTemporaryFile) {
  SKIP_WITHOUT_FFMPEG();
  TempFolder dir;
  auto frame = moving_shapes_frame(kW, kH, 0);
  {
    auto sink = create_frame_sink(dir / "aborted.mp4", {});
    ASSERT_TRUE(sink.is_ok());
    ASSERT_TRUE((*sink)->open(kW, kH, 16, 9).is_ok());
    for (int i = 0; i < 4; ++i) ASSERT_TRUE((*sink)->write(frame.data(), frame.size()).is_ok());
    ASSERT_EQ(dir.entries().size(), 1u);  // the temporary file exists while encoding
    EXPECT_NE(dir.entries()[0].find(".tmp-"), std::string::npos);
    EXPECT_EQ(fs::path(dir.entries()[0]).extension(), ".mp4");  // real extension kept last
    (*sink)->abort();
    EXPECT_TRUE(dir.entries().empty());
    EXPECT_EQ((*sink)->finish().code(), StatusCode::invalid_argument);  // nothing to finish after abort
  }
  {
    auto sink = create_frame_sink(dir / "dropped.webm", {});
    ASSERT_TRUE(sink.is_ok());
    ASSERT_TRUE((*sink)->open(kW, kH, 16, 9).is_ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*sink)->write(frame.data(), frame.size()).is_ok());
    EXPECT_EQ(dir.entries().size(), 1u);
  }  // destroyed unfinished
  EXPECT_TRUE(dir.entries().empty());
}

// A child process encodes slowly and reports through a pipe once 30 frames are in the encoder; then it
// is SIGKILLed. The final name must never appear (the temporary file stays: SIGKILL runs no cleanup).
TEST(VideoWriter, KilledMidEncodeLeavesNoFinalFile) {
  SKIP_WITHOUT_FFMPEG();
  TempFolder dir;
  const std::string final_path = dir / "killed.mp4";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    auto sink = create_frame_sink(final_path, {});
    if (!sink || !(*sink)->open(kW, kH, 16, 1000).is_ok()) _exit(3);
    for (int t = 0; t < 1000; ++t) {
      auto frame = moving_shapes_frame(kW, kH, t % 40);
      if (!(*sink)->write(frame.data(), frame.size()).is_ok()) _exit(4);
      if (t == 30 && ::write(fds[1], "x", 1) != 1) _exit(5);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    _exit((*sink)->finish().is_ok() ? 0 : 6);  // not reached: killed long before
  }
  close(fds[1]);
  char byte = 0;
  ASSERT_EQ(read(fds[0], &byte, 1), 1) << "the writer child failed before frame 30";
  close(fds[0]);
  std::vector<std::string> during = dir.entries();
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child was not killed mid-encode";
  ASSERT_EQ(during.size(), 1u);
  EXPECT_NE(during[0].find("killed.tmp-"), std::string::npos) << during[0];
  EXPECT_FALSE(fs::exists(final_path));
  EXPECT_EQ(dir.entries(), during);
}

TEST(VideoWriterMissing, WithoutFfmpegSaysWhatIsMissing) {
  if (video_writer_available()) GTEST_SKIP() << "built with FFmpeg";
  TempFolder dir;
  auto sink = create_frame_sink(dir / "x.mp4", {});
  EXPECT_EQ(sink.status().code(), StatusCode::unsupported);
  EXPECT_NE(sink.status().message().find("apt-get install"), std::string::npos) << sink.status().message();
  Status s = check_output(dir / "x.mp4", 17, {});
  EXPECT_EQ(s.code(), StatusCode::unsupported);
  EXPECT_EQ(read_video_rgb(dir / "x.mp4").status().code(), StatusCode::unsupported);
}

}  // namespace
}  // namespace vdit::test
