// The Wan2.1 VAE decoder on one CUDA GPU: the same weights, graph and streaming causal decode as the CPU
// VaeDecoder (one latent frame at a time, every causal conv keeping its last 2 input frames on the device),
// each video frame copied back as [3, 8H, 8W] f32 clamped to [-1, 1] and handed to the same FrameCallback.
// Activations are channels-last fp32 (or bf16); convolutions run through cuDNN, the mid attention through
// cuBLASLt in fp32. Does not: tile (the H200 holds a 720p decode) or encode.
//
//   auto cpu = vdit::vae::VaeDecoder::load("Wan2.1_VAE.pth");            // loads and checks the weights
//   auto gpu = vdit::vae::VaeDecoderCuda::create(*cpu);                   // uploads them once
//   Status st = (*gpu)->decode(z, [&](int64_t t, const Tensor& frame) { return sink_write(t, frame); });
//
// Not thread-safe: decode() reuses per-size device buffers and cached convolution plans.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dit/vae/vae_decoder.h"

namespace vdit::vae {

enum class VaeCudaPrecision {
  fp32,  // exact fp32, TF32 off everywhere (matches the CPU decoder to ~1e-6)
  tf32,  // convolutions may use TF32 tensor cores (PyTorch's default cudnn.allow_tf32); GEMMs stay fp32
  bf16,  // bf16 activations and conv weights, fp32 accumulate; norms, biases, attention in fp32 (~autocast)
};

const char* vae_cuda_precision_name(VaeCudaPrecision p);
// "fp32", "tf32" or "bf16"; invalid_argument otherwise.
Result<VaeCudaPrecision> parse_vae_cuda_precision(const std::string& name);

struct VaeCudaOptions {
  VaeCudaPrecision precision = VaeCudaPrecision::fp32;
  // Causal kt = 3 convs as three accumulated 2D convs instead of one 5D cuDNN conv (for measurements; the
  // 5D path falls back to this by itself where cuDNN has no algorithm).
  bool conv_per_tap = false;
};

// Device memory of one decoder, in bytes.
struct VaeCudaMemory {
  size_t weights = 0;     // uploaded weights
  size_t activations = 0; // per-size buffers of the last decode (causal windows, layer outputs, staging)
  size_t workspace = 0;   // cuDNN and cuBLASLt workspaces
  size_t peak_total = 0;  // largest weights + activations + workspace seen
};

class VaeDecoderCuda {
 public:
  // Uploads the weights of `cpu` (which may be dropped afterwards). `unsupported` without a GPU, CUDA or
  // cuDNN (the message says which); out_of_memory names the size.
  static Result<std::unique_ptr<VaeDecoderCuda>> create(const VaeDecoder& cpu, const VaeCudaOptions& options = {});
  // VaeDecoder::load(path, load_options), then create().
  static Result<std::unique_ptr<VaeDecoderCuda>> load(const std::string& path, const VaeLoadOptions& load_options = {},
                                                      const VaeCudaOptions& options = {});
  ~VaeDecoderCuda();
  VaeDecoderCuda(const VaeDecoderCuda&) = delete;
  VaeDecoderCuda& operator=(const VaeDecoderCuda&) = delete;

  const VaeConfig& config() const;
  int64_t z_dim() const { return config().z_dim; }
  int64_t spatial_factor() const;
  int64_t output_frames(int64_t latent_frames) const;  // 1 + 4(F-1)
  VaeCudaPrecision precision() const;

  // As VaeDecoder::decode: z [z_dim, F, H, W] (or [1, z_dim, F, H, W]) of any float dtype; frames in order.
  // `options.on_stage` is honoured (every top-level layer, frames copied back planar [C, H, W]; slow);
  // options.tile > 0 is `unsupported`. Blocks until the last frame has been handed over.
  Status decode(const Tensor& z, const FrameCallback& on_frame, const VaeDecodeOptions& options = {});

  VaeCudaMemory memory() const;
  // The convolution algorithms picked so far, one line per shape (for benchmarks and logs).
  std::string describe_plans() const;

 private:
  struct Impl;
  explicit VaeDecoderCuda(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vdit::vae
