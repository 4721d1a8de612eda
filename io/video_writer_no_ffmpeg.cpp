// Video output in a build without FFmpeg: says so, and how to get it.
#include "io/video_writer.h"

namespace vdit {

bool video_writer_available() { return false; }

Result<std::unique_ptr<FrameSink>> create_video_writer(const std::string& path, const VideoWriterOptions&) {
  return unsupported(path +
                     ": this vdit was built without FFmpeg, so it cannot write videos; install "
                     "libavcodec-dev libavformat-dev libswscale-dev (apt-get install ...) and rebuild, or write "
                     ".png frames into a directory instead");
}

}  // namespace vdit
