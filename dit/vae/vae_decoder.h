// The Wan2.1 VAE decoder on the CPU (W `wan/modules/vae.py` `WanVAE_.decode`, wan.md §4): normalized latent
// z [z_dim, F, H, W] -> video frames [3, 8H, 8W] in [-1, 1], T = 1 + 4(F-1) of them. Decoding streams:
// one latent frame at a time, every causal conv keeping only its last 2 input frames, and each video frame
// handed to the callback as soon as it exists. Optional exact spatial tiling (see VaeDecodeOptions::tile).
// Media encoding is not done here; video_to_uint8 gives the official 8-bit pixels.
//
//   auto vae = vdit::vae::VaeDecoder::load("Wan2.1_VAE.pth");
//   if (!vae) return vae.status();
//   Status st = vae->decode(z, [&](int64_t t, const Tensor& frame) { return sink_write(t, frame); });
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dit/vae/vae_blocks.h"
#include "dit/vae/vae_config.h"

namespace vdit {
class TensorFile;
}

namespace vdit::vae {

// Called once per output frame, in order: index t and the frame [3, H·8, W·8] f32 clamped to [-1, 1]. The
// tensor is valid during the call only (copy it to keep it). A non-ok status stops decoding and is returned.
using FrameCallback = std::function<Status(int64_t index, const Tensor& frame)>;

// Observes the output of every top-level layer (`stage` = its official name: "conv2", "decoder.conv1",
// "decoder.middle.0", ..., "decoder.upsamples.11", "decoder.head" = before the clamp), frame by frame.
// For tests and debugging. In tiled decoding only the untiled layers (up to the middle block) report.
using StageCallback = std::function<void(const std::string& stage, int64_t frame, const Tensor& x)>;

struct VaeLoadOptions {
  // A config JSON (official WanVAE_ keys or diffusers AutoencoderKLWan keys). Empty: a `config.json` beside
  // the weights is used when its _class_name is AutoencoderKLWan, else the file's metadata, else the
  // released config with dim/z_dim read off the tensors.
  std::string config_path;
};

struct VaeDecodeOptions {
  // 0: untiled streaming. N > 0: exact spatial tiling, N latent pixels per tile side (N·8 output pixels).
  // The layers up to the middle block (which has frame-global attention) run untiled at the latent grid;
  // the rest runs tile by tile over all frames with a halo wide enough that every kept pixel equals the
  // untiled result (halo() latent pixels, 13 for Wan2.1), so no blending is needed. Memory then holds the
  // middle-block output of all F latent frames, the whole output video (f32) and one tile's causal state,
  // instead of the full-frame causal state; frames reach the callback after the last tile.
  int64_t tile = 0;
  StageCallback on_stage;
};

class VaeDecoder {
 public:
  // Opens `path` (safetensors, .pth, ... via open_tensor_file) and loads the decoder.
  static Result<VaeDecoder> load(const std::string& path, const VaeLoadOptions& options = {});
  // Loads from an open file; `config_json` is the text of a config file (may be empty).
  static Result<VaeDecoder> load(const TensorFile& file, const std::string& config_json = "",
                                 const std::string& config_name = "");

  const VaeConfig& config() const { return config_; }
  int64_t z_dim() const { return config_.z_dim; }
  int64_t spatial_factor() const { return spatial_factor_; }  // 8
  int64_t output_frames(int64_t latent_frames) const;         // 1 + 4(F-1)
  int64_t halo() const { return halo_; }                      // tiling halo in latent pixels
  // The loaded layers (f32 GEMM-layout weights), for other backends that upload them (VaeDecoderCuda).
  const std::vector<VaeLayer>& layers() const { return layers_; }

  // Decodes a normalized latent z [z_dim, F, H, W] (or [1, z_dim, F, H, W]) of any float dtype. Errors:
  // invalid_argument on a wrong shape or non-finite values; whatever `on_frame` returns.
  Status decode(const Tensor& z, const FrameCallback& on_frame, const VaeDecodeOptions& options = {}) const;

 private:
  Status decode_untiled(const Tensor& z, const FrameCallback& on_frame, const VaeDecodeOptions& options) const;
  Status decode_tiled(const Tensor& z, const FrameCallback& on_frame, const VaeDecodeOptions& options) const;

  VaeConfig config_;
  std::vector<VaeLayer> layers_;
  size_t first_local_ = 0;  // first layer after the middle block
  int64_t spatial_factor_ = 8;
  int temporal_ups_ = 2;
  int64_t halo_ = 0;
};

// Official 8-bit conversion (W utils.py cache_video): clamp to [-1, 1], then uint8((x + 1) / 2 · 255) with
// truncation. `dst` and `src` hold `n` values each.
void video_to_uint8(uint8_t* dst, const float* src, int64_t n);

// The same conversion for one decoded frame, planar [3, H, W] f32 -> interleaved RGB [H, W, 3] uint8 (the
// layout FrameSink::write takes).
void frame_to_rgb8(uint8_t* dst, const float* frame, int64_t H, int64_t W);

}  // namespace vdit::vae
