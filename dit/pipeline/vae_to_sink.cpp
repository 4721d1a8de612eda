// Streaming VAE decode into a frame sink, with separate timing of the VAE and of the sink.
#include "dit/pipeline/vae_to_sink.h"

#include <chrono>

namespace vdit::pipeline {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Status frame_to_rgb8(std::vector<uint8_t>* dst, const Tensor& frame) {
  if (!frame.defined() || frame.dtype() != DType::f32 || frame.rank() != 3 || frame.dim(0) != 3) {
    return invalid_argument("a decoded frame must be f32 [3, H, W], got " + shape_str(frame.shape()));
  }
  const int64_t hw = frame.dim(1) * frame.dim(2);
  std::vector<uint8_t> planar(static_cast<size_t>(3 * hw));  // [3, H, W]
  vae::video_to_uint8(planar.data(), frame.f32(), 3 * hw);
  dst->resize(static_cast<size_t>(3 * hw));  // [H, W, 3]
  uint8_t* out = dst->data();
  for (int64_t p = 0; p < hw; ++p) {
    out[3 * p + 0] = planar[static_cast<size_t>(p)];
    out[3 * p + 1] = planar[static_cast<size_t>(hw + p)];
    out[3 * p + 2] = planar[static_cast<size_t>(2 * hw + p)];
  }
  return Status::ok();
}

Status decode_into_sink(const vae::VaeDecoder& vae, const Tensor& z, double fps, FrameSink* sink,
                        const ProgressHandler& progress, StageTimings* timings, vae::VaeDecoderCuda* gpu) {
  if (!z.defined() || z.rank() != 4)
    return invalid_argument("the latent to decode must be [C, F', H', W'], got " + shape_str(z.shape()));
  const int64_t frames = vae.output_frames(z.dim(1));
  const int64_t height = z.dim(2) * vae.spatial_factor();
  const int64_t width = z.dim(3) * vae.spatial_factor();
  const auto start = std::chrono::steady_clock::now();
  double sink_s = 0;
  auto finish_timing = [&] {
    timings->encoding_s += sink_s;
    timings->vae_s += seconds_since(start) - sink_s;
  };
  if (progress && !progress({Stage::vae_decode, 0, static_cast<int>(frames), 0})) {
    return Status(StatusCode::cancelled, "cancelled before VAE decoding");
  }
  auto t0 = std::chrono::steady_clock::now();
  Status s = sink->open(static_cast<int>(width), static_cast<int>(height), fps, static_cast<int>(frames));
  sink_s += seconds_since(t0);
  if (!s) {
    finish_timing();
    return s;
  }
  std::vector<uint8_t> rgb;
  int written = 0;
  const vae::FrameCallback on_frame = [&](int64_t index, const Tensor& frame) -> Status {
    auto t1 = std::chrono::steady_clock::now();
    VDIT_TRY(frame_to_rgb8(&rgb, frame));
    VDIT_TRY(sink->write(rgb.data(), rgb.size()));
    sink_s += seconds_since(t1);
    ++written;
    if (progress && !progress({Stage::vae_decode, written, static_cast<int>(frames), seconds_since(start)})) {
      return Status(StatusCode::cancelled, strfmt("cancelled during VAE decoding after frame %lld of %lld",
                                                  static_cast<long long>(index + 1), static_cast<long long>(frames)));
    }
    return Status::ok();
  };
  s = gpu ? gpu->decode(z, on_frame) : vae.decode(z, on_frame);
  if (s && written != frames) {
    s = internal_error(
        strfmt("the VAE produced %d frames; %lld were expected", written, static_cast<long long>(frames)));
  }
  if (!s) {
    sink->abort();
    finish_timing();
    return s;
  }
  t0 = std::chrono::steady_clock::now();
  if (progress) progress({Stage::finishing, 0, 0, 0});
  s = sink->finish();
  sink_s += seconds_since(t0);
  finish_timing();
  return s;
}

}  // namespace vdit::pipeline
