// `vdit forward vae --weights W --inputs IN --out OUT`: decodes the normalized latent `z` [16, F, H, W] of
// IN with the Wan VAE decoder and writes `video` [3, T, 8H, 8W] f32 clamped to [-1, 1] to OUT
// (safetensors), for parity checks against PyTorch. Optional: `video_preclamp`, `video_uint8`, tiling (CPU),
// `--device cuda` (the CUDA decoder, `--precision fp32|tf32`).
// Writing media files is not done here (that is `vdit generate`'s job).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>

#include "dit/core/log.h"
#include "dit/vae/vae_decoder.h"
#include "dit/vae/vae_decoder_cuda.h"
#include "io/safetensors_writer.h"
#include "io/tensor_file.h"
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

struct ForwardVaeOptions {
  std::string weights, inputs, out, config, input_name = "z", device = "cpu", precision = "fp32";
  int64_t tile = 0;
  bool preclamp = false, uint8 = false;
};

int run_forward_vae(const ForwardVaeOptions& o) {
  vae::VaeLoadOptions lo;
  lo.config_path = o.config;
  auto dec = vae::VaeDecoder::load(o.weights, lo);
  if (!dec) return report_error(dec.status().message());
  std::unique_ptr<vae::VaeDecoderCuda> gpu;
  if (o.device == "cuda") {
    auto p = vae::parse_vae_cuda_precision(o.precision);
    if (!p) return report_error(p.status().message());
    vae::VaeCudaOptions co;
    co.precision = *p;
    auto g = vae::VaeDecoderCuda::create(*dec, co);
    if (!g) return report_error(g.status().message());
    gpu = std::move(g).value();
  }
  auto in = open_tensor_file(o.inputs);
  if (!in) return report_error(in.status().message());
  auto z = (*in)->tensor(o.input_name);
  if (!z) {
    return report_error(o.inputs + ": no tensor \"" + o.input_name + "\" (the normalized latent [" +
                        std::to_string(dec->z_dim()) + ", F, H, W]); use --input-name to pick another");
  }

  // Each frame [3, H, W] goes into its slot of [3, T, H, W] as it arrives.
  const Tensor& zt = *z;
  const int64_t F = zt.rank() >= 4 ? zt.dim(-3) : 0;
  const int64_t H = zt.rank() >= 4 ? zt.dim(-2) * dec->spatial_factor() : 0;
  const int64_t W = zt.rank() >= 4 ? zt.dim(-1) * dec->spatial_factor() : 0;
  const int64_t T = dec->output_frames(F);
  Tensor video, pre;
  auto alloc = [&](Tensor* t) -> Status {
    VDIT_ASSIGN(*t, Tensor::create(DType::f32, {3, T, H, W}));
    return Status::ok();
  };
  auto put = [&](Tensor* dst, int64_t t, const Tensor& f) {
    for (int64_t c = 0; c < 3; ++c) {
      std::memcpy(dst->f32() + (c * T + t) * H * W, f.f32() + c * H * W, static_cast<size_t>(H * W) * sizeof(float));
    }
  };
  if (T > 0) {
    Status s = alloc(&video);
    if (s.is_ok() && o.preclamp) s = alloc(&pre);
    if (!s.is_ok()) return report_error(s.message());
  }
  vae::VaeDecodeOptions opt;
  opt.tile = o.tile;
  if (o.preclamp) {
    if (o.tile > 0) return report_error("--preclamp needs an untiled decode (drop --tile)");
    opt.on_stage = [&](const std::string& stage, int64_t t, const Tensor& x) {
      if (stage == "decoder.head" && t < T) put(&pre, t, x);
    };
  }
  auto t0 = std::chrono::steady_clock::now();
  auto on_frame = [&](int64_t t, const Tensor& frame) -> Status {
    if (t >= T || frame.dim(1) != H || frame.dim(2) != W) return internal_error("VAE emitted an unexpected frame");
    put(&video, t, frame);
    return Status::ok();
  };
  Status s = gpu ? gpu->decode(zt, on_frame, opt) : dec->decode(zt, on_frame, opt);
  if (!s.is_ok()) return report_error(s.message());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  VDIT_LOG_INFO("decoded %lld latent frames into %lld frames of %lldx%lld in %.2f s on the %s", static_cast<long long>(F),
                static_cast<long long>(T), static_cast<long long>(W), static_cast<long long>(H), secs,
                gpu ? "GPU" : "CPU");

  NamedTensors outs = {{"video", video}};
  if (o.preclamp) outs.emplace_back("video_preclamp", pre);
  if (o.uint8) {
    auto u = Tensor::create(DType::u8, video.shape());
    if (!u) return report_error(u.status().message());
    vae::video_to_uint8(u->data<uint8_t>(), video.f32(), video.numel());
    outs.emplace_back("video_uint8", *u);
  }
  s = save_safetensors(o.out, outs, {{"vae_config", dec->config().to_string()}});
  if (!s.is_ok()) return report_error(s.message());
  return 0;
}

std::function<int()> setup_forward_vae(CLI::App& app) {
  auto o = std::make_shared<ForwardVaeOptions>();
  app.add_option("--weights", o->weights, "VAE weights (.safetensors or .pth; official or diffusers names)")->required();
  app.add_option("--inputs", o->inputs, "safetensors file holding the normalized latent z [16, F, H, W]")->required();
  app.add_option("--out", o->out, "output safetensors: video [3, T, 8H, 8W] f32 in [-1, 1]")->required();
  app.add_option("--input-name", o->input_name, "name of the latent tensor in --inputs (default z)");
  app.add_option("--config", o->config, "VAE config JSON (official WanVAE_ or diffusers AutoencoderKLWan keys)");
  app.add_option("--tile", o->tile, "exact spatial tiling: latent pixels per tile side (0 = untiled)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--device", o->device, "cpu or cuda (the CUDA decoder; untiled)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--precision", o->precision, "CUDA decoder precision: fp32 (exact, TF32 off), tf32 or bf16")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16"}));
  app.add_flag("--preclamp", o->preclamp, "also write video_preclamp (the decoder output before the clamp)");
  app.add_flag("--uint8", o->uint8, "also write video_uint8 (official 8-bit pixels, truncated)");
  return [o] { return run_forward_vae(*o); };
}

}  // namespace

VDIT_REGISTER_COMMAND("forward vae", "Decode a latent with the Wan VAE decoder (CPU or CUDA) into a [-1, 1] video tensor", 52,
                      setup_forward_vae);

}  // namespace vdit::cli
