// The VAE decoder's convolutions on the GPU through cuDNN's legacy convolution API, channels-last, fp32 or
// bf16 tensors (always fp32 accumulation): a causal
// 3D conv reads a window of kt frames [kt, H, W, Ci] (oldest first, NDHWC) and writes one frame [H, W, Co]
// (a 5D conv with no temporal padding); kt = 1 convs are plain 2D convs. A kt = 3 conv can instead run as
// three 2D convs accumulated in place (per-tap mode, also the fallback when cuDNN has no 5D algorithm for a
// shape), with per-tap filter copies made once per weight pointer. The algorithm is chosen once per
// shape by timing cuDNN's top heuristic candidates on the first call's buffers, and cached with a shared
// workspace. No bias here (the caller fuses it into the next element-wise kernel). No CUDA headers here.
// Not thread-safe: one engine per decoder. Builds without cuDNN get a twin whose create() says so.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "dit/core/device_buffer.h"
#include "dit/core/status.h"

namespace vdit::vae::cuda {

enum class ConvPrecision {
  fp32,  // fp32 tensors, FMA kernels only (no TF32)
  tf32,  // fp32 tensors, TF32 tensor cores allowed (PyTorch's default cudnn.allow_tf32)
  bf16,  // bf16 tensors and filters, fp32 accumulate
};

struct ConvShape {
  int64_t ci = 0, co = 0;
  int64_t kt = 1, kh = 1, kw = 1;  // kt in {1, 3}; kh, kw odd (same padding)
  int64_t H = 0, W = 0;            // input = output spatial size
};

class ConvEngine {
 public:
  // `stream` is a cudaStream_t (null = default stream). per_tap: run kt = 3 convs as three accumulated 2D
  // convs instead of one 5D conv.
  static Result<std::unique_ptr<ConvEngine>> create(ConvPrecision precision, void* stream, bool per_tap = false);
  ~ConvEngine();
  ConvEngine(const ConvEngine&) = delete;
  ConvEngine& operator=(const ConvEngine&) = delete;

  // y [H, W, Co] = cross-correlation of x [kt, H, W, Ci] with w [Co, kt, kh, kw, Ci] (cuDNN NHWC filter
  // layout), zero spatial padding (kh-1)/2, (kw-1)/2, stride 1. Enqueued on the stream, no host sync
  // (except the first call of a shape, which picks the algorithm and may grow the workspace).
  Status run(void* y, const void* x, const void* w, const ConvShape& s);

  size_t workspace_bytes() const;
  // One line per planned shape: "ci->co kKTxKHxKW @HxW: algo N (math), X ms = T TFLOP/s, ws Y MiB" (the time
  // is our measurement of the chosen algorithm, on its first call).
  std::string describe() const;

 private:
  struct Plan;
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;
  ConvEngine() = default;
  // The plan of shape s, made on first use by timing candidates on y, x, w (the caller's real buffers).
  Result<Plan*> plan_for(const ConvShape& s, void* y, const void* x, const void* w);
  Status describe_plan(Plan* p) const;
  Status choose_algorithm(Plan* p, void* y, const void* x, const void* w);
  Status ensure_workspace(size_t bytes);
  Result<const void*> tap_filters(const void* w, const ConvShape& s);
  Status run_per_tap(void* y, const void* x, const void* w, const ConvShape& s);
  size_t esize() const { return precision_ == ConvPrecision::bf16 ? 2 : 4; }

  void* handle_ = nullptr;  // cudnnHandle_t
  void* stream_ = nullptr;
  void* events_[2] = {nullptr, nullptr};  // cudaEvent_t, for timing candidates
  ConvPrecision precision_ = ConvPrecision::fp32;
  bool per_tap_ = false;
  DeviceBuffer workspace_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
  std::map<const void*, DeviceBuffer> taps_;  // weight pointer -> [3][Co, kh, kw, Ci]
};

}  // namespace vdit::vae::cuda
