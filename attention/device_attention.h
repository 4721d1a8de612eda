// Attention on GPU memory: the call description the CUDA backend passes to attention kernels and methods.
// No CUDA headers here (the stream is an opaque pointer), so CPU-only builds include it freely; the kernels
// live in attention/cuda/ (cuDNN dense SDPA, the block-sparse flash-attention kernel).
#pragma once

#include <cmath>
#include <cstdint>

namespace vdit::attn {

enum class DeviceDType : uint8_t { bf16, f16 };

// One attention call on device memory, batch 1, token-major (the layout of the model's linear layers):
//   q [L, NH, HD], k and v [Lk, NH, HD], out [L, NH, HD] (all `dtype`, contiguous, 16-byte aligned);
//   lse [NH, L] f32, natural log of the softmax denominator of the scaled scores, or null.
struct DeviceQKV {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;
  int64_t L = 0;       // query tokens
  int64_t Lk = 0;      // key/value tokens; 0 means L (self-attention)
  int NH = 0;
  int HD = 0;
  DeviceDType dtype = DeviceDType::bf16;
  float scale = 0.f;   // 0 means 1/sqrt(HD)
  void* stream = nullptr;  // cudaStream_t; null = the default stream

  int64_t keys() const { return Lk > 0 ? Lk : L; }
  float softmax_scale() const { return scale > 0.f ? scale : 1.0f / std::sqrt(static_cast<float>(HD)); }
};

}  // namespace vdit::attn
