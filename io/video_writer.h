// Video output through FFmpeg's libavcodec/libavformat/libswscale: H.264 (libx264) in MP4 or Matroska,
// VP9 (libvpx-vp9) in WebM, yuv420p, BT.709 limited range (tagged in the stream), constant-quality
// CRF. The sink streams: each frame is converted and encoded as it arrives. Odd widths or heights are
// refused with a clear error (yuv420p halves the chroma planes); no padding or cropping is done.
// Without FFmpeg (video_writer_no_ffmpeg.cpp) creation fails with `unsupported` and the apt-get hint.
#pragma once

#include <memory>
#include <string>

#include "io/frame_sink.h"

namespace vdit {

// The codec a container gets, with its CRF range and default.
struct VideoCodecSpec {
  const char* container;    // libavformat muxer name: "mp4", "matroska", "webm"
  const char* codec;        // preferred libavcodec encoder: "libx264", "libvpx-vp9"
  const char* codec_label;  // for messages: "H.264", "VP9"
  int crf_min, crf_max;
  // H.264 10: what official Wan2.1 writes (imageio quality=8 -> int((1 - 0.8) * 51) = CRF 10), where
  // 4:2:0 chroma, not the codec, dominates the loss. VP9 15: about the same PSNR, 30-40 % smaller.
  int crf_default;
};

// nullptr for an unknown container name.
const VideoCodecSpec* video_codec_for(const std::string& container);

struct VideoWriterOptions {
  std::string container = "mp4";  // "mp4", "matroska" or "webm"
  int crf = -1;                   // -1: the codec's default
};

// True when this build writes videos (FFmpeg found at configure time).
bool video_writer_available();

// A sink writing `path` (not yet opened). Fails with `unsupported` without FFmpeg, `invalid_argument`
// on an unknown container or a CRF out of the codec's range.
Result<std::unique_ptr<FrameSink>> create_video_writer(const std::string& path, const VideoWriterOptions& options);

}  // namespace vdit
