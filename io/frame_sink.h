// FrameSink: where decoded frames are streamed, one at a time, as the VAE decoder produces them, and
// the factory that picks a sink from the output path (a video by extension, one image, or a directory
// of numbered PNGs). Every sink writes under a temporary name and renames on finish(), so a killed or
// failed run never leaves a partial file under the final name. Converting latents or [-1, 1] tensors
// to pixels is not done here (the pipeline does that); sinks take uint8 RGB only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "dit/core/status.h"

namespace vdit {

// A frame is uint8 RGB, interleaved, [H, W, 3], rows packed (row stride = 3 * W bytes): the layout
// image and video libraries take directly, so no sink has to transpose.
class FrameSink {
 public:
  virtual ~FrameSink() = default;  // an unfinished sink removes its temporary file or folder

  // Starts the output. `expected_frames` is what the caller will write (a hint for videos; images
  // need exactly 1). Fails with invalid_argument on sizes or rates the format cannot hold.
  virtual Status open(int width, int height, double fps, int expected_frames) = 0;
  // Appends one frame of `bytes` == 3 * width * height bytes, [H, W, 3].
  virtual Status write(const uint8_t* rgb, size_t bytes) = 0;
  // Flushes the encoder, closes the file and renames it to the final path.
  virtual Status finish() = 0;
  // Drops the output: closes and removes the temporary file or folder. Safe to call at any time.
  virtual void abort() = 0;

  virtual const std::string& path() const = 0;  // the final path
  virtual int frames_written() const = 0;
};

enum class OutputKind { video, image, frame_directory };

// What an output path asks for, decided by its extension: .mp4 / .mkv (H.264), .webm (VP9),
// .png / .jpg / .jpeg (one image), and a path ending in '/', an existing folder or a path with no
// extension (numbered PNG frames frame_00000.png, ... inside that folder).
struct OutputTarget {
  OutputKind kind = OutputKind::video;
  std::string path;       // as given, without a trailing '/'
  std::string container;  // video: "mp4", "matroska", "webm"; image: "png", "jpg"; directory: "png"
};

const char* output_kind_name(OutputKind kind);

// Fails with invalid_argument (naming the accepted extensions) on an unknown extension.
Result<OutputTarget> classify_output(const std::string& path);

struct MediaOptions {
  int crf = -1;           // video quality, lower is better; -1 = the codec's default (see video_writer.h)
  int jpeg_quality = 95;  // 1..100
};

// Everything that can be checked before any heavy work: a known extension, a built-in encoder for it,
// an existing writable parent folder, a frame count the kind can hold (images: exactly 1), a CRF in
// the codec's range, and for a directory that it does not already exist with files in it.
Status check_output(const std::string& path, int frames, const MediaOptions& options);

// Creates the sink for `path` (not yet opened).
Result<std::unique_ptr<FrameSink>> create_frame_sink(const std::string& path, const MediaOptions& options);

// --- helpers shared by the sink implementations ------------------------------------------------

// "<dir>/<stem>.tmp-<pid>-<n><ext>": unique per process and call, and keeps the real extension last
// so tools that look at the name still see the format. For a folder: "<path>.tmp-<pid>-<n>".
std::string temporary_path_for(const std::string& final_path, bool is_directory);
// Renames a finished temporary file or folder over `final_path` (a folder may replace an existing
// empty folder, never a non-empty one).
Status rename_into_place(const std::string& temp_path, const std::string& final_path, bool is_directory);
// Writes `bytes` to `path` in one go (not atomic by itself; sinks call it on temporary names).
Status write_whole_file(const std::string& path, const void* data, size_t bytes);

}  // namespace vdit
