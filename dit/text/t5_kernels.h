// CUDA kernels of the UMT5 encoder that are not GEMMs (those go to cuBLASLt / cuBLAS, t5_encoder_cuda.cpp):
// embedding gather, residual add + T5 RMS norm, softmax with the relative position bias and key mask, and the
// gated GELU-tanh product. Activations are bf16 or fp32 (the `bf16` flags), statistics always fp32.
// Launchers return the launch status and never synchronize. No CUDA headers here; include only from CUDA
// translation units (t5_*_cuda.cpp).
#pragma once

#include <cstdint>

#include "dit/core/status.h"

namespace vdit::text::cuda {

// x[i, :] = f32(table[ids[i], :]) for i < L; table [V, D] bf16 or fp32. Ids are checked by the caller.
Status t5_embed(float* x, const void* table, bool table_bf16, const int32_t* ids, int64_t L, int64_t D,
                void* stream);

// Residual add then T5 RMS norm (no mean subtraction), one row per block:
//   x[r, :] += y[r, :]  (when y != null; x is the fp32 residual stream)
//   out[r, :] = x[r, :] · rsqrt(mean(x[r, :]²) + eps) · weight   (bf16 or fp32)
struct T5NormParams {
  float* x = nullptr;            // [rows, D] fp32
  const void* y = nullptr;       // [rows, D] bf16 when y_bf16, else fp32; null = no add
  bool y_bf16 = true;
  void* out = nullptr;           // [rows, D] bf16 when out_bf16, else fp32
  bool out_bf16 = true;
  const float* weight = nullptr;  // [D] fp32
  int64_t rows = 0, D = 0;
  float eps = 1e-6f;
};
Status t5_add_rms_norm(const T5NormParams& p, void* stream);

// Softmax over keys of scores plus the layer's relative bias, no scaling (T5 convention):
//   probs[h, i, j] = softmax_j(scores[h, i, j] + table[buckets[j - i + L - 1], h])  over keys with mask[j] != 0,
//   exactly 0 for masked keys (torch's finfo.min fill). Rows are `ld` elements apart (ld >= L), heads L·ld.
struct T5SoftmaxParams {
  const float* scores = nullptr;      // [NH, L, ld] fp32
  void* probs = nullptr;              // [NH, L, ld] bf16 when probs_bf16, else fp32
  bool probs_bf16 = true;
  const float* table = nullptr;       // [NB, NH] fp32 relative bias of the layer
  const int32_t* buckets = nullptr;   // [2L-1] bucket of relative position r = j - i, indexed r + L - 1
  const uint8_t* key_mask = nullptr;  // [L] or null (all valid); at least one valid key (caller checks)
  int64_t L = 0, ld = 0, num_heads = 0;
};
Status t5_softmax_bias(const T5SoftmaxParams& p, void* stream);

// out[r, f] = GELU_tanh(gu[r, f]) · gu[r, F + f]: gu holds the gate (GELU branch) and fc1 outputs side by
// side ([rows, 2F], one fused GEMM); out [rows, F]. Both bf16 or both fp32.
Status t5_gated_gelu(void* out, const void* gu, bool bf16, int64_t rows, int64_t F, void* stream);

}  // namespace vdit::text::cuda
