// `vdit generate` interrupted while it encodes (SIGINT, as Ctrl-C, and SIGTERM) must exit non-zero,
// say so, and leave neither the final file nor its temporary behind. Runs the built binary on the tiny
// model; the signal is sent once the output's temporary file exists, i.e. during VAE decode + encoding.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "dit/text/tokenizer.h"
#include "io/video_writer.h"
#include "tests/cli/fixture/tiny_model.h"
#include "tests/media/media_test_util.h"

namespace vdit::test {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  bool signalled_mid_encode = false;  // the temporary output existed when the signal went out
  int exit_code = -1;
  std::string stderr_text;
};

Outcome run_and_interrupt(const TempFolder& dir, int sig) {
  Outcome out;
  const std::string vdit = std::string(VDIT_BINARY_DIR) + "/bin/vdit";
  const std::string log = dir / "stderr.txt";
  fs::create_directories(dir / "out");
  pid_t child = fork();
  if (child == 0) {
    std::freopen(log.c_str(), "w", stderr);
    // 81 frames at 64x64: the VAE + encoder stage lasts long enough to be interrupted in the middle.
    execl(vdit.c_str(), vdit.c_str(), "generate", "--model", (dir / "model").c_str(), "-p", "a cat", "--frames", "81",
          "--height", "64", "--width", "64", "--steps", "1", "--seed", "1", "-o", (dir / "out/clip.mp4").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  int status = 0;
  bool exited = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(child, &status, WNOHANG) == child) {
      exited = true;
      break;
    }
    bool temp = false;
    for (const auto& e : fs::directory_iterator(dir / "out"))
      temp |= e.path().filename().string().rfind("clip.tmp-", 0) == 0;  // not the writability probe
    if (temp) {
      out.signalled_mid_encode = true;
      kill(child, sig);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!exited) {
    if (!out.signalled_mid_encode) kill(child, SIGKILL);
    waitpid(child, &status, 0);
  }
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  std::stringstream ss;
  ss << std::ifstream(log).rdbuf();
  out.stderr_text = ss.str();
  return out;
}

TEST(CliInterrupt, SignalDuringEncodingLeavesNoOutput) {
  const std::string vdit = std::string(VDIT_BINARY_DIR) + "/bin/vdit";
  if (!fs::exists(vdit)) GTEST_SKIP() << vdit << " is not built";
  if (!video_writer_available()) GTEST_SKIP() << "built without FFmpeg";
  if (text::Tokenizer::load(VDIT_TEST_DATA_DIR "/text/tiny_unigram.model").status().code() == StatusCode::unsupported) {
    GTEST_SKIP() << "built without sentencepiece";
  }
  for (int sig : {SIGINT, SIGTERM}) {
    TempFolder dir;
    ASSERT_TRUE(write_tiny_model_folder(dir / "model", VDIT_TEST_DATA_DIR).is_ok());
    Outcome o = run_and_interrupt(dir, sig);
    ASSERT_TRUE(o.signalled_mid_encode) << "the run ended before its output appeared; exit " << o.exit_code << "\n"
                                        << o.stderr_text;
    EXPECT_EQ(o.exit_code, 1) << o.stderr_text;
    EXPECT_NE(o.stderr_text.find("interrupted; no output was written"), std::string::npos) << o.stderr_text;
    EXPECT_TRUE(fs::is_empty(dir / "out")) << "signal " << sig << " left files in the output folder";
  }
}

}  // namespace
}  // namespace vdit::test
