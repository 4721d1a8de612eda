// Per-frame CPU kernels of the Wan VAE decoder on channel-first frames [C, H, W] f32: the causal 3D /
// 2D convolution as one BLAS GEMM per kernel tap over bands of output rows (optionally reading its input
// through a nearest x2 upsample, so the upsampled frame is never stored whole), the channel RMS norm
// (+ SiLU), and plain loop references of both for tests. Streaming state (which frames are history) is
// the caller's.
#pragma once

#include <cstdint>

#include "dit/core/parallel.h"
#include "dit/core/tensor.h"

namespace vdit::vae {

// Below this many elements of work a loop stays on the calling thread. The VAE's non-GEMM loops (norms,
// adds, copies) are memory bound and small next to the convs around them, while an OpenMP region costs
// a fork/join plus worker threads that spin afterwards and compete with OpenBLAS's own workers. Measured
// on the shared 2-core box, dim-16 decode of 9 frames at 256², 2 threads: regions from 2^18 elements
// 4.0 CPU-s, from 2^22 2.4 CPU-s (1 thread: 2.2); with no threshold the tiny golden took 35x longer.
constexpr int64_t kParallelMinWork = int64_t{1} << 22;

// f(i) for i in [0, n), threaded through parallel_for only when n·work_per_item is worth it.
template <class F>
void parallel_work(int64_t n, int64_t work_per_item, F&& f) {
  if (n > 1 && n * work_per_item >= kParallelMinWork) {
    parallel_for(n, f);
  } else {
    for (int64_t i = 0; i < n; ++i) f(i);
  }
}

// A convolution's weights in GEMM layout: the PyTorch weight [Co, Ci, kt, kh, kw] regrouped per kernel
// tap, w[(t·kh + dy)·kw + dx] = [Co, Ci], each tap the A operand of its own GEMM.
struct ConvWeights {
  int64_t co = 0, ci = 0, kt = 1, kh = 1, kw = 1;
  Tensor w;  // [kt·kh·kw, Co, Ci] f32
  Tensor b;  // [Co] f32
};

// From a PyTorch Conv3d weight [Co, Ci, kt, kh, kw] or Conv2d weight [Co, Ci, kh, kw] (any float dtype)
// and bias [Co]. kh and kw must be odd (same padding); `what` names the tensors in messages.
Result<ConvWeights> make_conv_weights(const Tensor& weight, const Tensor& bias, const std::string& what);

// A causal conv's memory: the last up-to-2 input frames it saw, oldest first. Frames are shared, not
// copied (every producer allocates a fresh frame).
struct FrameHistory {
  Tensor frames[2];
  int count = 0;
  void push(const Tensor& frame);
  void clear();
};

// out[Co, Ho, Wo] = conv(frames) + b, with Ho = H << up, Wo = W << up:
// - `frames` holds kt pointers to [Ci, H, W] inputs, oldest first; nullptr is a zero frame (the causal
//   front padding). Only a prefix may be null.
// - spatial zero padding (kh-1)/2, (kw-1)/2; stride 1;
// - up = 1 reads the input through a nearest x2 upsample (`nearest-exact` at factor 2).
Status conv_frame(float* out, const ConvWeights& w, const float* const* frames, int64_t H, int64_t W, int up);

// y[C, N] = x / max(‖x‖₂ over C, 1e-12) · √C · gamma[c], then SiLU when `silu`; y may equal x.
void rms_norm_channels(float* y, const float* x, const float* gamma, int64_t C, int64_t N, bool silu);

// References: direct loops with double accumulation, PyTorch weight layout [Co, Ci, kt, kh, kw].
void conv_frame_reference(float* out, const float* weight, const float* bias, int64_t Co, int64_t Ci, int64_t kt,
                          int64_t kh, int64_t kw, const float* const* frames, int64_t H, int64_t W, int up);
void rms_norm_channels_reference(float* y, const float* x, const float* gamma, int64_t C, int64_t N, bool silu);

}  // namespace vdit::vae
