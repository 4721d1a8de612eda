// The UMT5 text encoder on a CUDA GPU, with the semantics of the CPU T5Encoder (t5_encoder.h): same weights
// (uploaded once), same inputs and checks, same full and trimmed outputs as f32 host tensors. GEMMs run on
// cuBLASLt (q|k|v and gate|fc1 fused), attention as batched cuBLAS GEMMs around a softmax kernel that adds
// the relative bias and masks keys. CPU-only builds link t5_encoder_no_cuda.cpp, whose factories return
// `unsupported`. No CUDA headers here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dit/core/tensor.h"
#include "dit/text/t5_weights.h"

namespace vdit::text {

enum class T5Precision : uint8_t {
  // GEMM weights and GEMM inputs/outputs in bf16 with fp32 accumulation (the official model runs in bf16),
  // but the residual stream, RMS statistics, norm weights, relative bias and softmax in fp32 (as autocast):
  // a little closer to fp32 than the official all-bf16 run. Weights take 2 bytes per parameter.
  bf16,
  // Everything fp32 (cuBLAS without TF32): the CPU encoder's numbers to ~1e-6. 4 bytes per parameter.
  f32,
};
const char* t5_precision_name(T5Precision p);               // "bf16", "f32"
Result<T5Precision> parse_t5_precision(const std::string& name);  // "bf16" | "f32" (also "fp32")

struct T5CudaOptions {
  T5Precision precision = T5Precision::bf16;
  // > 1: time up to that many cuBLASLt candidates on the first GEMM of each shape (LtGemm autotune). Shapes
  // depend on the token count, so this pays off for repeated encodes of one length (benchmarks), not prompts.
  int gemm_autotune = 0;
};

// GPU memory held by an encoder.
struct T5CudaMemory {
  size_t weight_bytes = 0;     // all weights, embedding included
  size_t workspace_bytes = 0;  // activations for the longest input so far + the cuBLASLt workspace
};

class T5EncoderCuda {
 public:
  // Uploads `weights` (any mix of f32/bf16/f16 host tensors, converted to the precision's dtypes) to the
  // current device. Out of GPU memory is `out_of_memory` with the size and a hint to use the CPU encoder.
  static Result<std::unique_ptr<T5EncoderCuda>> create(const T5Weights& weights, const T5CudaOptions& options = {});
  // load_t5_weights(path) without the f32 host copy (bf16 files stay memory-mapped until uploaded), then create.
  static Result<std::unique_ptr<T5EncoderCuda>> load(const std::string& path, const T5CudaOptions& options = {});
  // Seeded random weights generated on the GPU (no host copy), initialised as the goldens (wan.md §7.3):
  // linears N(0, 1/fan_in), norm weights 1 + 0.1·N, relative bias 0.5·N, embedding N(0, 1).
  static Result<std::unique_ptr<T5EncoderCuda>> random(const T5Config& config, uint64_t seed,
                                                       const T5CudaOptions& options = {});
  ~T5EncoderCuda();
  T5EncoderCuda(const T5EncoderCuda&) = delete;
  T5EncoderCuda& operator=(const T5EncoderCuda&) = delete;

  const T5Config& config() const;
  T5Precision precision() const;
  T5CudaMemory memory() const;

  // As T5Encoder::encode: every position of `ids`, keys with mask 0 ignored; mask empty = all valid. Ids
  // outside [0, vocab) and bad masks are `invalid_argument`. Calls are serialized by an internal lock
  // (one stream, one workspace).  // [L, D] f32
  Result<Tensor> encode(const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask = {}) const;
  // As T5Encoder::encode_trimmed: the rows out[:mask.sum()], running only the valid prefix.  // [Lc, D] f32
  Result<Tensor> encode_trimmed(const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask) const;

  // The weights as f32 host tensors (bf16 values widened exactly), official layout, unfused: the CPU
  // T5Encoder built from them runs the very same model (tests, `vdit bench t5` validation).
  Result<T5Weights> download_weights() const;

 private:
  struct Impl;
  explicit T5EncoderCuda(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vdit::text
