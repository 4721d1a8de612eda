// A FrameSink that keeps the frames in memory (uint8 RGB [H, W, 3], back to back) instead of writing a file,
// for callers that look at the pixels themselves (`vdit compare`, tests); write_to() then streams them into
// a real sink when a file is wanted too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/frame_sink.h"

namespace vdit {

class MemoryFrameSink : public FrameSink {
 public:
  Status open(int width, int height, double fps, int expected_frames) override;
  Status write(const uint8_t* rgb, size_t bytes) override;
  Status finish() override { return Status::ok(); }
  void abort() override;  // drops the frames
  const std::string& path() const override { return path_; }
  int frames_written() const override { return frames_; }

  int width() const { return width_; }
  int height() const { return height_; }
  double fps() const { return fps_; }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

  // Streams the kept frames into `sink` (created, not opened) and finishes it.
  Status write_to(FrameSink* sink) const;

 private:
  std::string path_ = "(memory)";
  std::vector<uint8_t> bytes_;
  int width_ = 0, height_ = 0, frames_ = 0;
  double fps_ = 0;
};

}  // namespace vdit
