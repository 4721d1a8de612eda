// Element-wise CUDA kernels of the Wan VAE decoder on channels-last frames [H, W, C] (the layout the cuDNN
// convolutions and the attention GEMMs read without transposes): latent de-normalization, channel RMS norm
// (+ bias before it, + SiLU after it), bias/residual adds, nearest x2 upsampling, row softmax and the
// conversion to planar [C, H, W] f32 (with the final clamp). Activations are fp32 or bf16 (`bf16` flags,
// raw bits through void*); math, biases and norm weights are fp32. No CUDA headers here (streams are
// void*); every launcher returns the launch status and never synchronizes. Convolutions and GEMMs are
// elsewhere.
#pragma once

#include <cstdint>

#include "dit/core/status.h"

namespace vdit::vae::cuda {

// dst[p, c] = z[c, f, p] / inv_std[c] + mean[c] for the HW pixels p of latent frame f of z [Z, F, HW] f32
// (the official `z / (1/std) + mean`, same rounding as the CPU decoder).
Status denorm_latent_frame(void* dst, bool dst_bf16, const float* z, const float* inv_std, const float* mean,
                           int64_t Z, int64_t F, int64_t f, int64_t HW, void* stream);

// dst[p, :] = v / max(‖v‖₂, 1e-12) · √C · gamma, v = src[p, :] + bias (bias may be null), then SiLU when
// `silu`; N pixels of C channels. dst may equal src when both have the same type. Supported (src, dst):
// (f32, f32), (bf16, bf16), (bf16, f32).
Status rms_norm_channels_last(void* dst, bool dst_bf16, const void* src, bool src_bf16, const float* bias,
                              const float* gamma, int64_t C, int64_t N, bool silu, void* stream);

// y[p, c] += bias[c] + res[p, c] + res_bias[c] (y and res of the same type); any of bias, res, res_bias
// may be null (res_bias needs res).
Status add_bias_residual(void* y, bool bf16, const float* bias, const void* res, const float* res_bias, int64_t C,
                         int64_t N, void* stream);

// y[i] = a[i] + x[i] for n elements: a f32, x and y of the activation type (the attention block's output).
Status add_f32_residual(void* y, bool bf16, const float* a, const void* x, int64_t n, void* stream);

// dst [2H, 2W, C] = nearest x2 upsampling of src [H, W, C] (`nearest-exact` at factor 2: pixel duplication).
Status upsample_nearest2x(void* dst, const void* src, bool bf16, int64_t H, int64_t W, int64_t C, void* stream);

// Each of `rows` rows of s [rows, cols] f32 becomes softmax(scale · row), in place.
Status softmax_rows(float* s, int64_t rows, int64_t cols, float scale, void* stream);

// dst [C, H·W] f32 = src [H·W, C] transposed, clamped to [-1, 1] when `clamp`.
Status to_planar(float* dst, const void* src, bool src_bf16, int64_t C, int64_t HW, bool clamp, void* stream);

}  // namespace vdit::vae::cuda
