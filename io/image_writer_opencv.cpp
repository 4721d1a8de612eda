// OpenCV image codecs: RGB <-> BGR (OpenCV's channel order) and imencode / imread. File placement
// (temporary names, renames) is done in image_writer.cpp, not here.
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "io/image_writer.h"

namespace vdit {

bool image_io_available() { return true; }

Result<std::vector<uint8_t>> encode_image(const std::string& format, const uint8_t* rgb, int width, int height,
                                          int jpeg_quality) {
  if (format != "png" && format != "jpg")
    return invalid_argument("unknown image format \"" + format + "\": use png or jpg");
  if (!rgb || width <= 0 || height <= 0)
    return invalid_argument(strfmt("image size %dx%d is not positive", width, height));
  if (jpeg_quality < 1 || jpeg_quality > 100)
    return invalid_argument(strfmt("JPEG quality %d is outside 1..100", jpeg_quality));
  try {
    cv::Mat src(height, width, CV_8UC3, const_cast<uint8_t*>(rgb));  // [H, W, 3] RGB, borrowed
    cv::Mat bgr;
    cv::cvtColor(src, bgr, cv::COLOR_RGB2BGR);
    std::vector<int> params;
    if (format == "jpg") params = {cv::IMWRITE_JPEG_QUALITY, jpeg_quality};
    std::vector<uint8_t> bytes;
    if (!cv::imencode("." + format, bgr, bytes, params))
      return internal_error("OpenCV could not encode a " + format + " image");
    return bytes;
  } catch (const cv::Exception& e) {
    return internal_error(std::string("OpenCV: ") + e.what());
  }
}

Result<RgbImage> read_image_rgb(const std::string& path) {
  try {
    cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
    if (bgr.empty()) return not_found(path + ": cannot read this image (missing file or not a PNG/JPEG)");
    RgbImage out;
    out.width = bgr.cols;
    out.height = bgr.rows;
    out.pixels.resize(static_cast<size_t>(out.width) * out.height * 3);
    cv::Mat rgb(out.height, out.width, CV_8UC3, out.pixels.data());  // [H, W, 3], writes into `out`
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    return out;
  } catch (const cv::Exception& e) {
    return format_error(path + ": OpenCV: " + e.what());
  }
}

}  // namespace vdit
