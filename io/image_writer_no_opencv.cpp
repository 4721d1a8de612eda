// Image encoding in a build without OpenCV: says so, and how to get it.
#include "io/image_writer.h"

namespace vdit {
namespace {
const char* kHint =
    "this vdit was built without OpenCV, so it cannot read or write images; install libopencv-imgcodecs-dev "
    "libopencv-imgproc-dev (apt-get install ...) and rebuild, or write a video (.mp4)";
}  // namespace

bool image_io_available() { return false; }

Result<std::vector<uint8_t>> encode_image(const std::string& format, const uint8_t*, int, int, int) {
  return unsupported(format + " image: " + kHint);
}

Result<RgbImage> read_image_rgb(const std::string& path) { return unsupported(path + ": " + kHint); }

}  // namespace vdit
