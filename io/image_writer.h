// Image output through OpenCV: PNG (lossless) and JPEG encode/decode of uint8 RGB frames, and the two
// image sinks: one image file (exactly one frame) and a folder of numbered PNG frames. Files are
// written under temporary names and renamed when complete. Without OpenCV (image_writer_no_opencv.cpp)
// encoding fails with `unsupported` and the apt-get hint. Any size is accepted, odd ones included.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/frame_sink.h"

namespace vdit {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // [H, W, 3] RGB, rows packed
};

// True when this build reads and writes images (OpenCV found at configure time).
bool image_io_available();

// Encodes [H, W, 3] RGB as `format` ("png" or "jpg"); `jpeg_quality` 1..100 is used for JPEG only.
Result<std::vector<uint8_t>> encode_image(const std::string& format, const uint8_t* rgb, int width, int height,
                                          int jpeg_quality);
// Decodes a PNG/JPEG file into RGB (alpha is dropped, grey is expanded).
Result<RgbImage> read_image_rgb(const std::string& path);

// Writes one image to `path` atomically (temporary name, then rename); the format follows the extension.
Status write_image_rgb(const std::string& path, const uint8_t* rgb, int width, int height, int jpeg_quality = 95);

// A sink for exactly one frame written as `format` ("png" or "jpg") to `path`.
std::unique_ptr<FrameSink> create_image_sink(const std::string& path, const std::string& format, int jpeg_quality);
// A sink writing frame_00000.png, frame_00001.png, ... into a temporary folder renamed to `dir`.
std::unique_ptr<FrameSink> create_frame_directory_sink(const std::string& dir);

}  // namespace vdit
