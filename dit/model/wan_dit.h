// The Wan2.1 text-to-video DiT: load once, prepare each prompt's text conditioning once, then run one
// forward per (step, CFG branch). Backend-neutral interface; this build has the CPU backend (f32 weights,
// BLAS GEMMs, threaded element-wise kernels, tiled attention). Self-attention goes through the
// attn::SelfAttention passed in per call, so sparse methods plug in there.
//
//   auto dit = model::load_wan_dit("Wan2.1-T2V-1.3B");                    // file, index or model directory
//   auto cond = (*dit)->prepare_text(context);                              // [Lc, text_dim], once per prompt
//   auto attention = attn::make_dense_cpu_attention();
//   Tensor v;
//   (*dit)->forward(&v, x, /*timestep=*/999, **cond, *attention, {step, num_steps, /*branch=*/0});
//
// Does not: sample, schedule, encode text, decode latents (pipeline/, schedulers/, text/, vae/).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "attention/attention.h"
#include "dit/model/wan_config.h"
#include "io/tensor_file.h"

namespace vdit::model {

// Receives intermediate tensors by stage name (for golden tests and debugging); called synchronously
// during the call that records, with a tensor that stays valid after the call. Stage names and shapes:
//   text_embedding_out [text_len, D]                   (prepare_text)
//   patch_embedding_out [L, D], time_embedding_out [D], time_projection_out [6D]
//   block{i}_in, block{i}_self_attn_q_out, block{i}_self_attn_norm_q_out, block{i}_self_attn_out,
//   block{i}_norm3_out, block{i}_cross_attn_out, block{i}_ffn_out, block{i}_out   [L, D] each
//   head_out [L, out_dim·pt·ph·pw], out [out_dim, F, H, W]
// (the *_out of an attention or FFN module is its output projection, before the gate and residual).
using StageRecorder = std::function<void(const std::string& name, const Tensor& value)>;

// Where a forward sits in the sampling loop; passed on to the self-attention method in AttentionCall.
struct DitStep {
  int step = 0;  // denoising step index, 0-based
  int num_steps = 1;
  int branch = 0;  // 0 = conditional, 1 = unconditional
};

// One prompt's step-independent state: the embedded, zero-padded context and each block's cross-attention
// keys and values. Made by WanDit::prepare_text and only usable with the model that made it.
class TextConditioning {
 public:
  virtual ~TextConditioning() = default;
  virtual int64_t context_len() const = 0;  // Lc, the real (unpadded) token count
  virtual int64_t text_len() const = 0;     // padded length (config text_len)
};

enum class DitDevice { cpu, cuda };
const char* dit_device_name(DitDevice device);

class WanDit {
 public:
  virtual ~WanDit() = default;
  virtual const WanDitConfig& config() const = 0;
  virtual DitDevice device() const = 0;

  // context [Lc, text_dim] (f32, or bf16/f16 converted), 0 <= Lc <= text_len, zero-padded to text_len.
  virtual Result<std::shared_ptr<const TextConditioning>> prepare_text(const Tensor& context,
                                                                       const StageRecorder* record = nullptr) const = 0;

  // out <- velocity [out_dim, F, H, W] f32 for latent x [in_dim, F, H, W] (f32) at integer timestep
  // t in [0, 1000]. F, H, W must be multiples of the patch size, with at most 1024 patches per axis.
  // Safe to call from several threads on one model (no shared scratch).
  virtual Status forward(Tensor* out, const Tensor& x, int64_t timestep, const TextConditioning& text,
                         attn::SelfAttention& attention, const DitStep& step = {},
                         const StageRecorder* record = nullptr) const = 0;
};

struct WanDitLoadOptions {
  DitDevice device = DitDevice::cpu;
  int64_t head_dim = 128;  // used only when no config gives num_heads
};

// Describes what was loaded (for logs and the CLI).
struct WanDitSource {
  std::string weights;      // path(s) as given to the loader
  std::string layout;       // "official" or "diffusers" tensor names
  std::string directory;    // "file", "official directory", "diffusers directory", "built-in directory"
  std::string config_from;  // "config.json", "metadata", "tensor shapes" (the highest source present)
};

// Loads the DiT from a weights file, a sharded index or a model directory (see wan_files.h), reads the
// config (wan_config.h), checks the exact key set (wan_names.h) and builds the backend. `source`, when
// given, is filled with what was found. DitDevice::cuda builds the CUDA backend (wan_dit_cuda.h); it returns
// `unsupported` in builds without CUDA or where no GPU is visible.
Result<std::unique_ptr<WanDit>> load_wan_dit(const std::string& weights_path, const WanDitLoadOptions& options = {},
                                             WanDitSource* source = nullptr);

// Builds a DiT from an already opened file and resolved config (e.g. a loader of our own model format);
// the key set is matched exactly first. `file` is kept alive by the model.
Result<std::unique_ptr<WanDit>> create_wan_dit(std::shared_ptr<const TensorFile> file, const WanDitConfig& config,
                                               DitDevice device = DitDevice::cpu);

// Classifier-free guidance: out = uncond + scale·(cond − uncond), element-wise in f32 (as the official
// sampler). out may alias either input; shapes must match.
Status classifier_free_guidance(Tensor* out, const Tensor& cond, const Tensor& uncond, double scale);

}  // namespace vdit::model
