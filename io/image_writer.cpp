// The image sinks (one image; a folder of numbered PNGs) and the atomic single-image write. Encoding
// goes through encode_image (OpenCV, or the twin that reports it missing); nothing here links OpenCV.
#include "io/image_writer.h"

#include <filesystem>
#include <system_error>

namespace vdit {
namespace {

namespace fs = std::filesystem;

Status check_frame(const std::string& path, int width, int height, const uint8_t* rgb, size_t bytes) {
  size_t want = static_cast<size_t>(width) * static_cast<size_t>(height) * 3;
  if (!rgb || bytes != want) {
    return invalid_argument(strfmt("%s: frame has %zu bytes, expected %zu (%dx%d RGB, [H, W, 3])", path.c_str(), bytes,
                                   want, width, height));
  }
  return Status::ok();
}

Status check_open_args(const std::string& path, int width, int height) {
  if (width <= 0 || height <= 0)
    return invalid_argument(strfmt("%s: frame size %dx%d is not positive", path.c_str(), width, height));
  return Status::ok();
}

// What both image sinks share: frames go to a temporary file or folder (`temp_`) that finish() renames onto the
// final path and abort() removes; `what` names the output in messages ("an image sink", "a frame folder").
class StagedImageSink : public FrameSink {
 public:
  StagedImageSink(std::string path, bool is_dir, const char* what) : path_(std::move(path)), is_dir_(is_dir), what_(what) {}
  ~StagedImageSink() override { abort(); }

  Status finish() override {
    if (!open_) return invalid_argument(path_ + ": finish() on " + what_ + " that is not open");
    if (frames_ == 0) return invalid_argument(path_ + ": no frame was written; nothing to finish");
    Status s = rename_into_place(temp_, path_, is_dir_);
    if (!s) {
      abort();
      return s;
    }
    open_ = false;
    return Status::ok();
  }

  void abort() override {
    if (!open_) return;
    // Only our own temporary (a fresh name) is removed, with the frames written into it.
    std::error_code ec;
    fs::remove_all(temp_, ec);
    open_ = false;
  }

  const std::string& path() const override { return path_; }
  int frames_written() const override { return frames_; }

 protected:
  Status check_write(const uint8_t* rgb, size_t bytes) const {
    if (!open_) return invalid_argument(path_ + ": write() on " + what_ + " that is not open");
    return check_frame(path_, width_, height_, rgb, bytes);
  }

  std::string path_, temp_;
  bool is_dir_;
  const char* what_;
  bool open_ = false;
  int width_ = 0, height_ = 0, frames_ = 0;
};

class ImageSink final : public StagedImageSink {
 public:
  ImageSink(std::string path, std::string format, int quality)
      : StagedImageSink(std::move(path), false, "an image sink"), format_(std::move(format)), quality_(quality) {}

  Status open(int width, int height, double, int expected_frames) override {
    if (open_) return invalid_argument(path_ + ": open() called twice");
    VDIT_TRY(check_open_args(path_, width, height));
    if (expected_frames != 1) {
      return invalid_argument(
          strfmt("%s: an image holds one frame but %d frames are coming; use --frames 1, a video "
                 "(.mp4, .mkv, .webm) or a folder (a path ending in '/') for numbered PNG frames",
                 path_.c_str(), expected_frames));
    }
    width_ = width;
    height_ = height;
    temp_ = temporary_path_for(path_, false);
    open_ = true;
    return Status::ok();
  }

  Status write(const uint8_t* rgb, size_t bytes) override {
    VDIT_TRY(check_write(rgb, bytes));
    if (frames_ > 0) return invalid_argument(path_ + ": an image holds one frame; a second frame was written");
    VDIT_ASSIGN(std::vector<uint8_t> encoded, encode_image(format_, rgb, width_, height_, quality_));
    VDIT_TRY(write_whole_file(temp_, encoded.data(), encoded.size()));
    ++frames_;
    return Status::ok();
  }

 private:
  std::string format_;
  int quality_;
};

class FrameDirectorySink final : public StagedImageSink {
 public:
  explicit FrameDirectorySink(std::string dir) : StagedImageSink(std::move(dir), true, "a frame folder") {}

  Status open(int width, int height, double, int) override {
    if (open_) return invalid_argument(path_ + ": open() called twice");
    VDIT_TRY(check_open_args(path_, width, height));
    std::error_code ec;
    if (fs::exists(path_, ec) && !(fs::is_directory(path_, ec) && fs::is_empty(path_, ec))) {
      return invalid_argument(
          path_ + ": exists and is not an empty folder; frames are only written into a new or empty folder");
    }
    temp_ = temporary_path_for(path_, true);
    if (!fs::create_directory(temp_, ec) || ec) {
      return io_error(temp_ + ": cannot create the temporary folder (" + ec.message() +
                      "); check that the parent folder is writable");
    }
    width_ = width;
    height_ = height;
    open_ = true;
    return Status::ok();
  }

  Status write(const uint8_t* rgb, size_t bytes) override {
    VDIT_TRY(check_write(rgb, bytes));
    VDIT_ASSIGN(std::vector<uint8_t> encoded, encode_image("png", rgb, width_, height_, 95));
    std::string name = strfmt("%s/frame_%05d.png", temp_.c_str(), frames_);
    VDIT_TRY(write_whole_file(name, encoded.data(), encoded.size()));
    ++frames_;
    return Status::ok();
  }
};

}  // namespace

Status write_image_rgb(const std::string& path, const uint8_t* rgb, int width, int height, int jpeg_quality) {
  VDIT_ASSIGN(OutputTarget target, classify_output(path));
  if (target.kind != OutputKind::image) return invalid_argument(path + ": not an image path (use .png, .jpg or .jpeg)");
  ImageSink sink(path, target.container, jpeg_quality);
  VDIT_TRY(sink.open(width, height, 1, 1));
  VDIT_TRY(sink.write(rgb, static_cast<size_t>(width) * height * 3));
  return sink.finish();
}

std::unique_ptr<FrameSink> create_image_sink(const std::string& path, const std::string& format, int jpeg_quality) {
  return std::make_unique<ImageSink>(path, format, jpeg_quality);
}

std::unique_ptr<FrameSink> create_frame_directory_sink(const std::string& dir) {
  return std::make_unique<FrameDirectorySink>(dir);
}

}  // namespace vdit
