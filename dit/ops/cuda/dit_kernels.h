// Element-wise CUDA kernels of the Wan2.1 DiT forward (the GEMMs are in lt_gemm.h, attention in attention/):
// fused gated-residual add + LayerNorm + modulation, RMSNorm of q/k with 3D RoPE, (un)patchify, small
// vector ops of the time path, conversions and seeded random fills. Precision follows the official
// autocast run (wan.md §1.3): statistics and residual stream in fp32, bf16 only where autocast rounds.
// bf16 tensors are passed as void* (raw bits); no CUDA headers here. Every launcher returns the launch
// status and never synchronizes. Does not: GEMMs, attention, memory management.
#pragma once

#include <cstdint>

#include "dit/core/status.h"

namespace vdit::ops::cuda {

// x[rows, D] (fp32 residual stream) += y[rows, D] (bf16) · gate[D], then
// out[rows, D] = LN(x)·mul' + add  with LN over D without affine parameters (eps), mul' = 1 + mul when
// `one_plus` (modulation: scale) else mul (affine LayerNorm weight); mul/add null mean 1/0.
// y == null skips the add (x read only); gate == null adds y as is. `round_norm_bf16` rounds LN(x) to bf16
// before mul/add (the official block 0, whose input is the bf16 patch embedding: WanLayerNorm's type_as).
// out is bf16 when out_bf16, else fp32. D % 8 == 0; pointers 16-byte aligned.
struct AddNormParams {
  float* x = nullptr;
  const void* y = nullptr;
  const float* gate = nullptr;
  void* out = nullptr;
  const float* mul = nullptr;
  const float* add = nullptr;
  bool one_plus = true;
  bool round_norm_bf16 = false;
  bool out_bf16 = true;
  int64_t rows = 0, D = 0;
  float eps = 1e-6f;
};
Status add_layer_norm(const AddNormParams& p, void* stream);

// RMSNorm over the full row (D) of up to three bf16 tensors, optionally followed by the Wan 3D RoPE:
// dst[i][r, :] = rope( bf16( src[i][r, :] · rsqrt(mean(src²) + eps) ) · weight[i] )  rounded to bf16,
// exactly the official order (WanRMSNorm: _norm(x.float()).type_as(x) * weight; rope_apply; flash_attention
// casts to bf16). src rows have stride src_ld elements, dst rows stride D (contiguous [rows, NH, HD]).
// weight[i] == null copies src to dst unchanged (used to gather v out of the fused qkv GEMM output).
// RoPE (cos != null): pair j of each head (elements 2j, 2j+1) rotates by the angle of its axis; the tables
// are [gf·p0 | gh·p1 | gw·p2] (per axis, [position, pair]), token r = (fi·gh + hi)·gw + wi. src may equal dst.
struct QkNormParams {
  const void* src[3] = {nullptr, nullptr, nullptr};
  void* dst[3] = {nullptr, nullptr, nullptr};
  const float* weight[3] = {nullptr, nullptr, nullptr};
  int count = 1;  // tensors to process (1..3)
  int64_t rows = 0, D = 0, src_ld = 0;
  int HD = 0;
  float eps = 1e-6f;
  const float* cos = nullptr;  // RoPE tables (null: no RoPE)
  const float* sin = nullptr;
  int pairs[3] = {0, 0, 0};
  int64_t gf = 0, gh = 0, gw = 0;
};
Status qk_norm_rope(const QkNormParams& p, void* stream);

// tokens[L, C·pt·ph·pw] (bf16) from latent x[C, F, H, W] (fp32), token vector ordered (c, kt, kh, kw).
Status patchify_bf16(void* tokens, const float* x, int64_t C, int64_t F, int64_t H, int64_t W, int pt, int ph,
                     int pw, void* stream);
// out[C, F, H, W] (fp32) from y[L, pt·ph·pw·C] (fp32), token vector ordered (kt, kh, kw, c).
Status unpatchify_f32(float* out, const float* y, int64_t C, int64_t F, int64_t H, int64_t W, int pt, int ph, int pw,
                      void* stream);

// out[i] = a[i] + b[i % period], fp32 (per-block modulation + e0; head modulation + e).
Status add_broadcast_f32(float* out, const float* a, const float* b, int64_t n, int64_t period, void* stream);
// out[i] = x[i] · sigmoid(x[i]), fp32; out may equal x.
Status silu_f32(float* out, const float* x, int64_t n, void* stream);
// bf16 -> fp32.
Status bf16_to_f32(float* out, const void* x, int64_t n, void* stream);

// dst[i] = offset + scale · gaussian_at(seed, i) (dit/core/rng.h), stored as bf16 or fp32; the same values
// on every backend, so a host copy can rebuild the same random model on the CPU.
Status fill_gaussian(void* dst, bool bf16, int64_t n, uint64_t seed, float scale, float offset, void* stream);

}  // namespace vdit::ops::cuda
