// Dense attention on the GPU through cuDNN's fused SDPA forward (the unified SDPA_FWD backend operation of
// cuDNN >= 9.13.1), called through the plain backend C API. One execution plan per shape, built on first use
// and cached. It does not mask, drop out or run backward, and cannot do block-sparse attention on Hopper
// (cuDNN's block mask is Blackwell-only). No CUDA or cuDNN headers here: builds without cuDNN compile the
// twin cudnn_sdpa_no_cudnn.cpp, whose create() says how to get cuDNN.
#pragma once

#include <memory>
#include <string>

#include "attention/device_attention.h"
#include "dit/core/status.h"

namespace vdit::attn {

// Minimum cuDNN for the unified SDPA_FWD operation (cudnnGetVersion() encoding, 9.13.1).
constexpr int kCudnnSdpaMinVersion = 91301;

class CudnnSdpa {
 public:
  // Creates a cuDNN handle on the current CUDA device after checking cudnnGetVersion() >= 91301; the error
  // names the version found and the one required. One object per stream user; not thread-safe.
  static Result<std::unique_ptr<CudnnSdpa>> create();
  ~CudnnSdpa();
  CudnnSdpa(const CudnnSdpa&) = delete;
  CudnnSdpa& operator=(const CudnnSdpa&) = delete;

  // Dense attention for one call (device_attention.h): q [L,NH,HD], k/v [Lk,NH,HD], out [L,NH,HD] in bf16 or
  // f16, optional lse [NH,L] f32 (natural log of the softmax denominator of the scaled scores). Runs
  // asynchronously on qkv.stream. Plans are cached per (L, Lk, NH, HD, dtype, lse?); the workspace grows as
  // needed (a growth synchronizes the device once). Shapes cuDNN cannot run (HD not a multiple of 8 or
  // above 256, no engine for the shape) give `unsupported` with the reason; bad arguments `invalid_argument`.
  Status forward(const DeviceQKV& qkv);

  // Why a shape cannot run, checked without touching the GPU; empty when the static rules allow it (the
  // engine may still refuse it at plan time).
  static std::string unsupported_reason(const DeviceQKV& qkv);

  // cudnnGetVersion() of the loaded library (e.g. 91400), 0 without cuDNN.
  static int version();
  // "cuDNN 9.14.0 SDPA_FWD, 3 cached plans" (for logs and describe()).
  std::string describe() const;
  // The engine index (in heuristic mode A order) and workspace bytes of the plan for `qkv`'s shape, built
  // if needed; for tests and benchmarks.
  Result<std::string> plan_info(const DeviceQKV& qkv);

 private:
  struct Impl;
  explicit CudnnSdpa(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vdit::attn
