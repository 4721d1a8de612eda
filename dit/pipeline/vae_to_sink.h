// The last stage shared by `generate` and `decode`: stream the VAE's frames into a FrameSink as they
// are produced, converting each [3, H, W] f32 frame in [-1, 1] to 8-bit RGB [H, W, 3] the official way
// (clamp, then uint8((x + 1) / 2 · 255) with truncation). Times VAE work and sink work separately.
#pragma once

#include <cstdint>
#include <vector>

#include "dit/core/tensor.h"
#include "dit/pipeline/progress.h"
#include "dit/vae/vae_decoder.h"
#include "dit/vae/vae_decoder_cuda.h"
#include "io/frame_sink.h"

namespace vdit::pipeline {

// dst [H, W, 3] uint8 <- frame [3, H, W] f32 (official conversion; interleaves the channels).
Status frame_to_rgb8(std::vector<uint8_t>* dst, const Tensor& frame);

// Opens `sink` with the decoded size, `fps` and the frame count for latent z [C, F', H', W'], decodes
// into it and finishes it. On any error or cancellation the sink is aborted (no partial output).
// Adds to timings->vae_s and timings->encoding_s. With `gpu` (made from `vae`), the GPU decoder decodes; `vae`
// still gives the output geometry.
Status decode_into_sink(const vae::VaeDecoder& vae, const Tensor& z, double fps, FrameSink* sink,
                        const ProgressHandler& progress, StageTimings* timings, vae::VaeDecoderCuda* gpu = nullptr);

}  // namespace vdit::pipeline
