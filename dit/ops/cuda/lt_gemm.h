// cuBLASLt GEMMs for the CUDA DiT: y[M,N] = x[M,K]·w[N,K]ᵀ (+ bias[N]) (then GELU-tanh), row-major as a
// PyTorch Linear. bf16 inputs with fp32 accumulate (bf16 output, bf16 bias, as autocast's addmm), or
// plain fp32 (no TF32) for the fp32 parts of the model (time MLP, head). Bias and GELU run in cuBLASLt's
// epilogue. The algorithm is chosen once per (shape, types, epilogue) by cuBLASLt's heuristic and cached.
// No CUDA headers here (the stream is an opaque pointer). Not thread-safe: one LtGemm per user or a lock.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "dit/core/device_buffer.h"
#include "dit/core/status.h"

namespace vdit::ops::cuda {

enum class GemmType : uint8_t { bf16, f32 };

enum class GemmEpilogue : uint8_t {
  none,            // y = x·wᵀ
  bias,            // y = x·wᵀ + b
  bias_gelu_tanh,  // y = GELU_tanh(x·wᵀ + b)  (cuBLASLt's GELU is the tanh approximation)
};

// One GEMM on device memory. bf16: x, w, bias and y are bf16 (fp32 accumulate, fp32 epilogue math).
// f32: all fp32. Pointers 16-byte aligned, rows contiguous (ld = K for x and w, N for y).
struct GemmCall {
  void* y = nullptr;           // [M, N]
  const void* x = nullptr;     // [M, K]
  const void* w = nullptr;     // [N, K]
  const void* bias = nullptr;  // [N]; required unless epilogue == none
  int64_t M = 0, N = 0, K = 0;
  GemmType type = GemmType::bf16;
  GemmEpilogue epilogue = GemmEpilogue::bias;
};

class LtGemm {
 public:
  // Creates the cuBLASLt handle and a workspace of `workspace_bytes` (32 MiB+ recommended on Hopper).
  // autotune > 1: the first call of each shape times up to that many of cuBLASLt's heuristic candidates on
  // the call's own buffers (synchronizing once) and keeps the fastest; otherwise the first candidate is used.
  static Result<std::unique_ptr<LtGemm>> create(size_t workspace_bytes = size_t{64} << 20, int autotune = 0);
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // Enqueues the GEMM on `stream` (cudaStream_t; null = default stream). No host synchronization.
  // `unsupported` when cuBLASLt has no algorithm for the shape (the message names it).
  Status run(const GemmCall& call, void* stream);

  size_t workspace_bytes() const { return workspace_.size(); }

 private:
  struct Plan;
  using Key = std::tuple<int64_t, int64_t, int64_t, int, int>;  // M, N, K, type, epilogue
  LtGemm() = default;
  Result<Plan*> plan_for(const GemmCall& call, void* stream);
  Status pick_fastest(Plan* plan, const GemmCall& call, void* stream, const void* results, int count);

  void* handle_ = nullptr;  // cublasLtHandle_t
  DeviceBuffer workspace_;
  int autotune_ = 0;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace vdit::ops::cuda
