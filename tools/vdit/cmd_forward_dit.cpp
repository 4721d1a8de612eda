// `vdit forward dit --weights W --inputs IN.safetensors --out OUT.safetensors [--device cpu|cuda]`: one
// Wan2.1 DiT forward on tensors from a file (for parity checks against PyTorch). IN holds `x` [in_dim, F, H, W],
// `t` [1] (integer-valued timestep in [0, 1000], any int or float dtype) and `context` [Lc, text_dim]
// (unpadded T5 output); OUT gets `out` [out_dim, F, H, W] f32. Dense attention (cuDNN SDPA on the GPU, where
// the DiT computes in the official bf16 autocast precision); no CFG, no sampling.
#include <chrono>
#include <cmath>
#include <cstring>

#include "attention/attention.h"
#include "attention/methods/method.h"
#include "dit/core/log.h"
#include "dit/model/wan_dit.h"
#include "io/safetensors_writer.h"
#include "io/tensor_file.h"
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

struct ForwardDitOptions {
  std::string weights, inputs, out, device = "cpu";
  int64_t head_dim = 128;
};

Result<Tensor> input_tensor(const TensorFile& in, const std::string& name, const char* expected) {
  if (!in.find(name)) {
    std::string have;
    for (const auto& e : in.entries()) have += (have.empty() ? "" : ", ") + e.name;
    return not_found(in.path() + ": no tensor \"" + name + "\" (" + expected +
                     "); the file holds: " + (have.empty() ? std::string("nothing") : have));
  }
  VDIT_ASSIGN(Tensor t, in.tensor(name));
  if (!dtype_is_float(t.dtype())) {
    return invalid_argument(in.path() + ": \"" + name + "\" must be a float tensor (" + expected + "), got " +
                            dtype_name(t.dtype()));
  }
  return t.to(DType::f32);
}

// The timestep as an integer: one element of any numeric dtype, integer-valued, in [0, 1000].
Result<int64_t> read_timestep(const TensorFile& in) {
  const TensorEntry* e = in.find("t");
  if (!e) return not_found(in.path() + ": no tensor \"t\" (the timestep, shape [1])");
  if (shape_numel(e->shape) != 1 || e->shape.size() > 1) {
    return invalid_argument(in.path() + ": \"t\" must hold one timestep (shape [1]), got " + shape_str(e->shape));
  }
  if (e->dtype == DType::boolean) return invalid_argument(in.path() + ": \"t\" must be a number, got bool");
  double t = 0;
  if (e->dtype == DType::i64) {
    int64_t v;
    std::memcpy(&v, e->data, sizeof v);  // exact for any int64
    t = static_cast<double>(v);
    if (v < 0 || v > 1000)
      return invalid_argument(strfmt("%s: timestep t = %lld is outside [0, 1000]", in.path().c_str(), (long long)v));
  } else if (e->dtype == DType::f64) {
    std::memcpy(&t, e->data, sizeof t);
  } else {
    float f;
    convert_to_f32(&f, e->data, e->dtype, 1);
    t = f;
  }
  if (!std::isfinite(t) || t < 0 || t > 1000) {
    return invalid_argument(strfmt("%s: timestep t = %g is outside [0, 1000]", in.path().c_str(), t));
  }
  if (t != std::floor(t)) {
    return invalid_argument(
        strfmt("%s: timestep t = %g is not an integer (Wan uses int(sigma * 1000))", in.path().c_str(), t));
  }
  return static_cast<int64_t>(t);
}

int run_forward_dit(const ForwardDitOptions& o) {
  using namespace std::chrono;
  model::WanDitLoadOptions load;
  load.device = o.device == "cuda" ? model::DitDevice::cuda : model::DitDevice::cpu;
  load.head_dim = o.head_dim;

  auto in = open_tensor_file(o.inputs);
  if (!in) return report_error(in.status().message());
  auto x = input_tensor(**in, "x", "latent [in_dim, F, H, W]");
  if (!x) return report_error(x.status().message());
  auto context = input_tensor(**in, "context", "text context [Lc, text_dim]");
  if (!context) return report_error(context.status().message());
  auto t = read_timestep(**in);
  if (!t) return report_error(t.status().message());
  if (x->rank() != 4) {
    return report_error(o.inputs + ": \"x\" must be [in_dim, F, H, W], got " + shape_str(x->shape()));
  }
  if (context->rank() != 2) {
    return report_error(o.inputs + ": \"context\" must be [Lc, text_dim], got " + shape_str(context->shape()));
  }

  const auto t0 = steady_clock::now();
  model::WanDitSource source;
  auto dit = model::load_wan_dit(o.weights, load, &source);
  if (!dit) return report_error(dit.status().message());
  const auto t1 = steady_clock::now();
  auto text = (*dit)->prepare_text(*context);
  if (!text) return report_error(o.inputs + ": " + text.status().message());
  std::unique_ptr<attn::SelfAttention> attention;
  if (load.device == model::DitDevice::cuda) {
    const model::WanDitConfig& c = (*dit)->config();
    attn::ModelInfo info;
    info.num_layers = static_cast<int>(c.num_layers);
    info.num_heads = static_cast<int>(c.num_heads);
    info.head_dim = static_cast<int>(c.head_dim());
    auto dense = attn::make_attention("dense", nullptr, info);  // cuDNN SDPA through forward_device
    if (!dense) return report_error(dense.status().message());
    attention = std::move(*dense);
  } else {
    attention = attn::make_dense_cpu_attention();
  }
  Tensor out;
  Status st = (*dit)->forward(&out, *x, *t, **text, *attention);
  if (!st.is_ok()) return report_error(o.inputs + ": " + st.message());
  const auto t2 = steady_clock::now();
  VDIT_LOG_INFO("forward dit (%s): %s (%s names, config from %s), load %.2f s, text + forward %.2f s",
                o.device.c_str(), source.weights.c_str(), source.layout.c_str(), source.config_from.c_str(),
                duration<double>(t1 - t0).count(), duration<double>(t2 - t1).count());

  st = save_safetensors(o.out, {{"out", out}}, {{"timestep", std::to_string(*t)}, {"weights", source.weights}});
  if (!st.is_ok()) return report_error(st.message());
  return 0;
}

std::function<int()> setup_forward_dit(CLI::App& app) {
  auto o = std::make_shared<ForwardDitOptions>();
  app.add_option("--weights", o->weights,
                 "DiT weights: a .safetensors/.pth file, a .safetensors.index.json, or a model directory (official "
                 "release, diffusers with transformer/, or ours with dit.safetensors)")
      ->required();
  app.add_option("--inputs", o->inputs, "safetensors with x [16,F,H,W], t [1], context [Lc,text_dim]")->required();
  app.add_option("--out", o->out, "safetensors to write with out [16,F,H,W] f32")->required();
  app.add_option("--device", o->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--head-dim", o->head_dim, "head dim when no config gives num_heads (default 128)");
  return [o] { return run_forward_dit(*o); };
}

}  // namespace

VDIT_REGISTER_COMMAND("forward dit", "One Wan2.1 DiT forward on tensors from a file", 40, setup_forward_dit);

}  // namespace vdit::cli
