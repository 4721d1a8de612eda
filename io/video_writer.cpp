// The container -> codec table shared by the FFmpeg writer and by output checks (which also run in
// builds without FFmpeg, so this file has no FFmpeg dependency).
#include "io/video_writer.h"

namespace vdit {

const VideoCodecSpec* video_codec_for(const std::string& container) {
  // CRF ranges are the encoders' own: x264 0..51, libvpx-vp9 0..63.
  static const VideoCodecSpec specs[] = {
      {"mp4", "libx264", "H.264", 0, 51, 10},
      {"matroska", "libx264", "H.264", 0, 51, 10},
      {"webm", "libvpx-vp9", "VP9", 0, 63, 15},
  };
  for (const auto& s : specs) {
    if (container == s.container) return &s;
  }
  return nullptr;
}

}  // namespace vdit
