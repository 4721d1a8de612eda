// Output path classification and checks, the sink factory, and the temporary-name / rename helpers
// every sink uses. The encoders themselves live in video_writer_ffmpeg.cpp and image_writer*.cpp.
#include "io/frame_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "io/image_writer.h"
#include "io/video_writer.h"

namespace vdit {
namespace {

namespace fs = std::filesystem;

const char* kAcceptedOutputs =
    "use .mp4 or .mkv (H.264), .webm (VP9), .png or .jpg (one frame), or a folder path ending in '/' "
    "(numbered PNG frames)";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string parent_folder(const std::string& path) {
  std::string parent = fs::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// Creating a file is the only reliable test: access(W_OK) says yes to root on read-only mounts.
Status check_folder_writable(const std::string& folder, const std::string& output) {
  std::error_code ec;
  if (!fs::exists(folder, ec)) {
    return not_found("output folder \"" + folder + "\" (for " + output + ") does not exist; create it first");
  }
  if (!fs::is_directory(folder, ec)) return invalid_argument("\"" + folder + "\" (for " + output + ") is not a folder");
  std::string probe = temporary_path_for(folder + "/.vdit-write-test", false);
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    return io_error("output folder \"" + folder + "\" is not writable (" + std::strerror(errno) +
                    "); choose another -o/--output or fix the folder's permissions");
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return Status::ok();
}

}  // namespace

const char* output_kind_name(OutputKind kind) {
  switch (kind) {
    case OutputKind::video:
      return "video";
    case OutputKind::image:
      return "image";
    case OutputKind::frame_directory:
      return "frame folder";
  }
  return "?";
}

Result<OutputTarget> classify_output(const std::string& path) {
  if (path.empty()) return invalid_argument("no output path given (-o/--output); " + std::string(kAcceptedOutputs));
  OutputTarget t;
  t.path = path;
  bool trailing_slash = false;
  while (t.path.size() > 1 && t.path.back() == '/') {
    t.path.pop_back();
    trailing_slash = true;
  }
  std::error_code ec;
  std::string ext = lower(fs::path(t.path).extension().string());
  if (trailing_slash || fs::is_directory(t.path, ec) || ext.empty()) {
    t.kind = OutputKind::frame_directory;
    t.container = "png";
    return t;
  }
  if (ext == ".mp4")
    t = {OutputKind::video, t.path, "mp4"};
  else if (ext == ".mkv")
    t = {OutputKind::video, t.path, "matroska"};
  else if (ext == ".webm")
    t = {OutputKind::video, t.path, "webm"};
  else if (ext == ".png")
    t = {OutputKind::image, t.path, "png"};
  else if (ext == ".jpg" || ext == ".jpeg")
    t = {OutputKind::image, t.path, "jpg"};
  else
    return invalid_argument("unknown output extension \"" + ext + "\" in \"" + path + "\": " + kAcceptedOutputs);
  return t;
}

Status check_output(const std::string& path, int frames, const MediaOptions& options) {
  VDIT_ASSIGN(OutputTarget t, classify_output(path));
  if (frames < 1) return invalid_argument(strfmt("%d frames requested; at least one is needed", frames));
  std::error_code ec;
  switch (t.kind) {
    case OutputKind::video: {
      if (!video_writer_available()) return create_video_writer(t.path, {t.container, options.crf}).status();
      const VideoCodecSpec* spec = video_codec_for(t.container);
      if (options.crf >= 0 && (options.crf < spec->crf_min || options.crf > spec->crf_max)) {
        return invalid_argument(strfmt("CRF %d is outside %s's range %d..%d (lower is better; default %d)", options.crf,
                                       spec->codec_label, spec->crf_min, spec->crf_max, spec->crf_default));
      }
      break;
    }
    case OutputKind::image:
      if (frames != 1) {
        return invalid_argument(
            strfmt("%s is an image, which holds one frame, but %d frames were requested; use "
                   "--frames 1, a video (.mp4, .mkv, .webm) or a folder path ending in '/'",
                   t.path.c_str(), frames));
      }
      [[fallthrough]];
    case OutputKind::frame_directory:
      if (!image_io_available()) return encode_image(t.container, nullptr, 0, 0, 0).status().with_context(t.path);
      break;
  }
  if (options.jpeg_quality < 1 || options.jpeg_quality > 100) {
    return invalid_argument(strfmt("JPEG quality %d is outside 1..100", options.jpeg_quality));
  }
  if (t.kind == OutputKind::frame_directory && fs::exists(t.path, ec) &&
      !(fs::is_directory(t.path, ec) && fs::is_empty(t.path, ec))) {
    return invalid_argument(
        "output \"" + t.path +
        "\" already exists and is not an empty folder; frames are only written into a new or empty folder");
  }
  return check_folder_writable(parent_folder(t.path), t.path);
}

Result<std::unique_ptr<FrameSink>> create_frame_sink(const std::string& path, const MediaOptions& options) {
  VDIT_ASSIGN(OutputTarget t, classify_output(path));
  switch (t.kind) {
    case OutputKind::video:
      return create_video_writer(t.path, {t.container, options.crf});
    case OutputKind::image:
      return create_image_sink(t.path, t.container, options.jpeg_quality);
    case OutputKind::frame_directory:
      return create_frame_directory_sink(t.path);
  }
  return internal_error("unhandled output kind");
}

std::string temporary_path_for(const std::string& final_path, bool is_directory) {
  static std::atomic<int> counter{0};
  std::string tag = strfmt(".tmp-%ld-%d", static_cast<long>(::getpid()), counter++);
  if (is_directory) return final_path + tag;
  fs::path p(final_path);
  fs::path name = p.stem().string() + tag + p.extension().string();
  return (p.parent_path() / name).string();
}

Status rename_into_place(const std::string& temp_path, const std::string& final_path, bool is_directory) {
  std::error_code ec;
  if (is_directory && fs::is_directory(final_path, ec) && fs::is_empty(final_path, ec)) {
    fs::remove(final_path, ec);  // rename() cannot replace a folder, even an empty one, on every system
  }
  if (std::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    return io_error("cannot rename the finished " + std::string(is_directory ? "folder " : "file ") + temp_path +
                    " to " + final_path + " (" + std::strerror(errno) + ")");
  }
  return Status::ok();
}

Status write_whole_file(const std::string& path, const void* data, size_t bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f)
    return io_error(path + ": cannot write (" + std::strerror(errno) +
                    "); check that the folder exists and is writable");
  bool ok = std::fwrite(data, 1, bytes, f) == bytes;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(path.c_str());
    return io_error(path + ": write failed (disk full?)");
  }
  return Status::ok();
}

}  // namespace vdit
