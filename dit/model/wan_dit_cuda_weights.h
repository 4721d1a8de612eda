// The Wan DiT weights on the GPU: GEMM weights in bf16 (self-attention q|k|v stacked into one [3D, D]
// matrix so they run as one GEMM), norms, modulation, time MLP and head in fp32 (wan.md §1.3). Built by
// uploading host f32 weights, or from seeded random values generated on the GPU; copied back to the host
// for CPU cross-checks. Internal to the CUDA backend; no CUDA headers here.
#pragma once

#include <cstdint>
#include <vector>

#include "dit/core/device_buffer.h"
#include "dit/model/wan_config.h"
#include "dit/model/wan_weights.h"

namespace vdit::model {

struct DeviceLinear {
  const void* w = nullptr;  // [N, K] (PyTorch Linear layout), bf16 or fp32
  const void* b = nullptr;  // [N], same type
  int64_t N = 0, K = 0;
  bool bf16 = true;
};

struct DeviceBlockWeights {
  DeviceLinear qkv;                                     // [3D, D]: rows 0..D-1 q, then k, then v
  DeviceLinear o;                                       // [D, D]
  const float* norm_q = nullptr;                        // [D] (null without qk_norm)
  const float* norm_k = nullptr;                        // [D]
  const float* norm3_w = nullptr;                       // [D] (null without cross_attn_norm)
  const float* norm3_b = nullptr;                       // [D]
  DeviceLinear cross_q, cross_k, cross_v, cross_o;      // [D, D] each
  const float* cross_norm_q = nullptr;                  // [D]
  const float* cross_norm_k = nullptr;                  // [D]
  DeviceLinear ffn0;                                    // [Fh, D]
  DeviceLinear ffn2;                                    // [D, Fh]
};

struct DeviceDitWeights {
  DeviceLinear patch_embedding;                         // bf16 [D, in_dim·pt·ph·pw]
  DeviceLinear text_embedding0, text_embedding2;        // bf16 [D, text_dim], [D, D]
  DeviceLinear time_embedding0, time_embedding2;        // fp32 [D, freq_dim], [D, D]
  DeviceLinear time_projection;                         // fp32 [6D, D]
  const float* modulation = nullptr;                    // [num_layers, 6, D], all blocks' tables
  std::vector<DeviceBlockWeights> blocks;
  const float* head_modulation = nullptr;               // [2, D]
  DeviceLinear head;                                    // fp32 [out_dim·pt·ph·pw, D]
  std::vector<DeviceBuffer> storage;                    // owns every tensor above
  size_t bytes = 0;
};

Result<DeviceDitWeights> upload_dit_weights(const WanDitConfig& config, const WanDitWeights& host);
Result<DeviceDitWeights> random_dit_weights(const WanDitConfig& config, uint64_t seed);
Result<WanDitWeights> download_dit_weights(const WanDitConfig& config, const DeviceDitWeights& dev);

}  // namespace vdit::model
