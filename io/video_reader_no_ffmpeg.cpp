// Video reading in a build without FFmpeg: says so, and how to get it.
#include "io/video_reader.h"

namespace vdit {

Result<DecodedVideo> read_video_rgb(const std::string& path) {
  return unsupported(path +
                     ": this vdit was built without FFmpeg, so it cannot read videos; install "
                     "libavcodec-dev libavformat-dev libswscale-dev (apt-get install ...) and rebuild");
}

}  // namespace vdit
