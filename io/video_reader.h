// Reads a whole video back into uint8 RGB frames through FFmpeg, for tests and quality checks of what
// the writers produced (frame count, size, PSNR). Not a streaming player: every frame is kept in
// memory, so use it on short clips. Without FFmpeg it fails with `unsupported`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dit/core/status.h"

namespace vdit {

struct DecodedVideo {
  int width = 0;
  int height = 0;
  double fps = 0;                            // the stream's average frame rate
  std::string codec;                         // libavcodec decoder name, e.g. "h264", "vp9"
  std::string pixel_format;                  // e.g. "yuv420p"
  std::vector<std::vector<uint8_t>> frames;  // each [H, W, 3] RGB, rows packed
};

Result<DecodedVideo> read_video_rgb(const std::string& path);

}  // namespace vdit
