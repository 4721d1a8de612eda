// MemoryFrameSink (memory_sink.h).
#include "io/memory_sink.h"

namespace vdit {

Status MemoryFrameSink::open(int width, int height, double fps, int expected_frames) {
  if (width <= 0 || height <= 0) return invalid_argument(strfmt("memory sink: bad frame size %dx%d", width, height));
  width_ = width, height_ = height, fps_ = fps, frames_ = 0;
  bytes_.clear();
  if (expected_frames > 0) bytes_.reserve(static_cast<size_t>(width) * height * 3 * expected_frames);
  return Status::ok();
}

Status MemoryFrameSink::write(const uint8_t* rgb, size_t bytes) {
  const size_t frame = static_cast<size_t>(width_) * height_ * 3;
  if (frame == 0) return invalid_argument("memory sink: write before open");
  if (bytes != frame) return invalid_argument(strfmt("memory sink: a frame of %zu bytes, expected %zu", bytes, frame));
  bytes_.insert(bytes_.end(), rgb, rgb + bytes);
  ++frames_;
  return Status::ok();
}

void MemoryFrameSink::abort() {
  bytes_.clear();
  frames_ = 0;
}

Status MemoryFrameSink::write_to(FrameSink* sink) const {
  Status st = sink->open(width_, height_, fps_, frames_);
  const size_t frame = static_cast<size_t>(width_) * height_ * 3;
  for (int t = 0; st.is_ok() && t < frames_; ++t) st = sink->write(bytes_.data() + frame * t, frame);
  if (st.is_ok()) st = sink->finish();
  if (!st.is_ok()) sink->abort();
  return st;
}

}  // namespace vdit
