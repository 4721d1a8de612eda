// Wan2.1 DiT forward on the CPU (W wan/modules/model.py, WanModel.forward), f32 throughout: patch
// embedding as a GEMM, float64 sinusoid -> time MLP -> 6-way modulation, N blocks of modulated
// self-attention (RMSNorm q/k, 3D RoPE, attention through attn::SelfAttention), cross-attention to the
// cached text keys/values (dense tiled kernel), GELU-tanh FFN in row chunks; head with 2-way modulation;
// unpatchify. Activations are [L, D] token-major; attention views them as [L, NH, HD].
#include "dit/model/wan_dit_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "attention/dense_cpu.h"
#include "dit/model/wan_cpu_kernels.h"
#include "dit/model/wan_dit_inputs.h"
#include "dit/model/wan_embed.h"
#include "dit/ops/cpu_ops.h"

namespace vdit::model {
namespace {

// Largest grid extent per axis: the official RoPE table has 1024 positions.
// FFN rows per chunk: the [rows, Fh] hidden stays near 32 MB while the GEMMs keep >= 256 rows.
constexpr int64_t kFfnChunkFloats = int64_t{8} << 20;

void linear(float* y, const float* x, const WanLinear& l, int64_t M) {
  const int64_t N = l.weight.dim(0), K = l.weight.dim(1);
  ops::linear(y, x, l.weight.f32(), l.bias.f32(), M, N, K);
}

Result<Tensor> alloc(const Shape& shape) { return Tensor::create(DType::f32, shape); }

// Copies `n` floats at `data` into a new tensor of `shape` and hands it to the recorder.
void record_stage(const StageRecorder* rec, const std::string& name, const float* data, const Shape& shape) {
  if (!rec || !*rec) return;
  auto t = Tensor::create(DType::f32, shape);
  if (!t) return;  // recording is best effort; the forward itself does not depend on it
  std::memcpy(t->raw(), data, t->nbytes());
  (*rec)(name, *t);
}

class CpuTextConditioning : public TextConditioning {
 public:
  int64_t context_len() const override { return context_len_; }
  int64_t text_len() const override { return text_len_; }

  const void* owner = nullptr;  // the model that made it
  int64_t context_len_ = 0, text_len_ = 0;
  std::vector<Tensor> k, v;  // per block: [text_len, D] cross-attention keys (after norm_k) and values
};

class WanDitCpu : public WanDit {
 public:
  WanDitCpu(std::shared_ptr<const TensorFile> file, const WanDitConfig& config, WanDitWeights weights)
      : file_(std::move(file)), cfg_(config), w_(std::move(weights)) {}

  const WanDitConfig& config() const override { return cfg_; }
  DitDevice device() const override { return DitDevice::cpu; }

  Result<std::shared_ptr<const TextConditioning>> prepare_text(const Tensor& context,
                                                               const StageRecorder* record) const override;
  Status forward(Tensor* out, const Tensor& x, int64_t timestep, const TextConditioning& text,
                 attn::SelfAttention& attention, const DitStep& step, const StageRecorder* record) const override;

 private:

  std::shared_ptr<const TensorFile> file_;  // keeps mapped f32 weights alive
  WanDitConfig cfg_;
  WanDitWeights w_;
};

Result<std::shared_ptr<const TextConditioning>> WanDitCpu::prepare_text(const Tensor& context,
                                                                        const StageRecorder* record) const {
  const int64_t D = cfg_.dim, Lt = cfg_.text_len, Ct = cfg_.text_dim;
  VDIT_ASSIGN(Tensor ctx32, checked_text_context(cfg_, context));  // [Lc, Ct]
  const int64_t Lc = ctx32.dim(0);
  VDIT_ASSIGN(Tensor padded, Tensor::zeros(DType::f32, {Lt, Ct}));  // [Lt, Ct], rows >= Lc stay zero
  if (Lc > 0) std::memcpy(padded.raw(), ctx32.raw(), ctx32.nbytes());

  VDIT_ASSIGN(Tensor hidden, alloc({Lt, D}));  // [Lt, D]
  linear(hidden.f32(), padded.f32(), w_.text_embedding0, Lt);
  ops::gelu_tanh(hidden.f32(), hidden.f32(), Lt * D);
  VDIT_ASSIGN(Tensor ctx, alloc({Lt, D}));  // [Lt, D] embedded context (pad rows are not masked)
  linear(ctx.f32(), hidden.f32(), w_.text_embedding2, Lt);
  record_stage(record, "text_embedding_out", ctx.f32(), {Lt, D});

  auto cond = std::make_shared<CpuTextConditioning>();
  cond->owner = this;
  cond->context_len_ = Lc;
  cond->text_len_ = Lt;
  for (const WanBlockWeights& b : w_.blocks) {
    VDIT_ASSIGN(Tensor k, alloc({Lt, D}));  // [Lt, D]
    VDIT_ASSIGN(Tensor v, alloc({Lt, D}));  // [Lt, D]
    linear(k.f32(), ctx.f32(), b.cross_attn.k, Lt);
    if (cfg_.qk_norm) ops::rms_norm(k.f32(), k.f32(), b.cross_attn.norm_k.f32(), Lt, D, static_cast<float>(cfg_.eps));
    linear(v.f32(), ctx.f32(), b.cross_attn.v, Lt);
    cond->k.push_back(std::move(k));
    cond->v.push_back(std::move(v));
  }
  return std::shared_ptr<const TextConditioning>(std::move(cond));
}

Status WanDitCpu::forward(Tensor* out, const Tensor& x_in, int64_t timestep, const TextConditioning& text_base,
                          attn::SelfAttention& attention, const DitStep& step, const StageRecorder* rec) const {
  if (!out) return invalid_argument("forward: out is null");
  VDIT_TRY(check_dit_forward_inputs(cfg_, x_in, timestep));
  const auto* text = dynamic_cast<const CpuTextConditioning*>(&text_base);
  if (!text || text->owner != this) {
    return invalid_argument("text conditioning was prepared by another model; call prepare_text on this one");
  }
  const auto& p = cfg_.patch_size;
  const int64_t D = cfg_.dim, NH = cfg_.num_heads, HD = cfg_.head_dim(), Lt = cfg_.text_len;
  const int64_t F = x_in.dim(1), H = x_in.dim(2), W = x_in.dim(3);
  const int64_t gf = F / p[0], gh = H / p[1], gw = W / p[2];
  const int64_t L = gf * gh * gw;
  const int64_t Kp = cfg_.in_dim * cfg_.patch_volume();
  const int64_t Ko = cfg_.out_dim * cfg_.patch_volume();
  const float eps = static_cast<float>(cfg_.eps);
  const float attn_scale = 1.0f / std::sqrt(static_cast<float>(HD));

  // Patch embedding: Conv3d with kernel = stride = patch as a GEMM over flattened patches.
  VDIT_ASSIGN(Tensor x, alloc({L, D}));  // [L, D] residual stream
  {
    VDIT_ASSIGN(Tensor patches, alloc({L, Kp}));  // [L, in_dim·pt·ph·pw]
    patchify(patches.f32(), x_in.f32(), cfg_.in_dim, F, H, W, p);
    linear(x.f32(), patches.f32(), w_.patch_embedding, L);
  }
  record_stage(rec, "patch_embedding_out", x.f32(), {L, D});

  // Time embedding (f32 after a float64 sinusoid): e = MLP(sinusoid(t)), e0 = Linear(SiLU(e)).
  std::vector<float> sinusoid(static_cast<size_t>(cfg_.freq_dim));  // [freq_dim]
  {
    const std::vector<double> s64 = timestep_sinusoid(cfg_.freq_dim, static_cast<double>(timestep));
    for (size_t i = 0; i < s64.size(); ++i) sinusoid[i] = static_cast<float>(s64[i]);
  }
  std::vector<float> e_hidden(static_cast<size_t>(D)), e(static_cast<size_t>(D)), e_act(static_cast<size_t>(D));
  std::vector<float> e0(static_cast<size_t>(6 * D));                // [6, D]
  linear(e_hidden.data(), sinusoid.data(), w_.time_embedding0, 1);  // [D]
  ops::silu(e_hidden.data(), e_hidden.data(), D);
  linear(e.data(), e_hidden.data(), w_.time_embedding2, 1);  // [D]
  ops::silu(e_act.data(), e.data(), D);
  linear(e0.data(), e_act.data(), w_.time_projection, 1);  // [6D]
  record_stage(rec, "time_embedding_out", e.data(), {D});
  record_stage(rec, "time_projection_out", e0.data(), {6 * D});

  // Scratch, reused across blocks (the comment says what each holds at each point).
  VDIT_ASSIGN(Tensor h, alloc({L, D}));         // [L, D] normed input of a sub-layer, then its output projection
  VDIT_ASSIGN(Tensor q, alloc({L, D}));         // [L, NH, HD]
  VDIT_ASSIGN(Tensor k, alloc({L, D}));         // [L, NH, HD]
  VDIT_ASSIGN(Tensor v, alloc({L, D}));         // [L, NH, HD]
  VDIT_ASSIGN(Tensor attn_out, alloc({L, D}));  // [L, NH, HD]
  const int64_t ffn_rows = std::min(L, std::max<int64_t>(256, kFfnChunkFloats / cfg_.ffn_dim));
  VDIT_ASSIGN(Tensor ffn_hidden, alloc({ffn_rows, cfg_.ffn_dim}));  // [rows, Fh]
  const RopeTables rope = make_rope_tables(HD, gf, gh, gw);
  std::vector<float> mod(static_cast<size_t>(6 * D));  // [6, D]: shift1, scale1, gate1, shift2, scale2, gate2

  attn::AttentionCall call;
  call.num_layers = static_cast<int>(cfg_.num_layers);
  call.step = step.step;
  call.num_steps = step.num_steps;
  call.branch = step.branch;
  call.grid = {gf, gh, gw};
  call.text_len = 0;

  for (int64_t i = 0; i < cfg_.num_layers; ++i) {
    const WanBlockWeights& b = w_.blocks[static_cast<size_t>(i)];
    const std::string tag = "block" + std::to_string(i) + "_";
    record_stage(rec, tag + "in", x.f32(), {L, D});
    const float* m = b.modulation.f32();
    for (int64_t j = 0; j < 6 * D; ++j) mod[static_cast<size_t>(j)] = m[j] + e0[static_cast<size_t>(j)];
    const float* shift1 = mod.data();
    const float* scale1 = shift1 + D;
    const float* gate1 = shift1 + 2 * D;
    const float* shift2 = shift1 + 3 * D;
    const float* scale2 = shift1 + 4 * D;
    const float* gate2 = shift1 + 5 * D;

    // Self-attention.
    cpu::modulated_layer_norm(h.f32(), x.f32(), shift1, scale1, L, D, eps);  // [L, D]
    linear(q.f32(), h.f32(), b.self_attn.q, L);                              // [L, D]
    linear(k.f32(), h.f32(), b.self_attn.k, L);                              // [L, D]
    linear(v.f32(), h.f32(), b.self_attn.v, L);                              // [L, NH, HD]
    record_stage(rec, tag + "self_attn_q_out", q.f32(), {L, D});
    if (cfg_.qk_norm) {  // RMSNorm over the full D, before the split into heads
      ops::rms_norm(q.f32(), q.f32(), b.self_attn.norm_q.f32(), L, D, eps);
      ops::rms_norm(k.f32(), k.f32(), b.self_attn.norm_k.f32(), L, D, eps);
    }
    record_stage(rec, tag + "self_attn_norm_q_out", q.f32(), {L, D});
    cpu::apply_rope(q.f32(), rope, NH, HD);  // [L, NH, HD]
    cpu::apply_rope(k.f32(), rope, NH, HD);  // [L, NH, HD]
    call.layer = static_cast<int>(i);
    Status st = attention.forward(call, q.f32(), k.f32(), v.f32(), L, static_cast<int>(NH), static_cast<int>(HD),
                                  attn_out.f32());  // [L, NH, HD]
    if (!st.is_ok())
      return st.with_context(strfmt("self-attention (%s) of block %lld", attention.name(), (long long)i));
    linear(h.f32(), attn_out.f32(), b.self_attn.o, L);  // [L, D]
    record_stage(rec, tag + "self_attn_out", h.f32(), {L, D});
    cpu::gated_add(x.f32(), h.f32(), gate1, L, D);  // x += y · gate1

    // Cross-attention to the cached text keys/values (no modulation, gate, RoPE or mask).
    if (cfg_.cross_attn_norm) {
      ops::layer_norm(h.f32(), x.f32(), b.norm3_weight.f32(), b.norm3_bias.f32(), L, D, eps);  // [L, D]
    } else {
      std::memcpy(h.raw(), x.raw(), x.nbytes());
    }
    record_stage(rec, tag + "norm3_out", h.f32(), {L, D});
    linear(q.f32(), h.f32(), b.cross_attn.q, L);  // [L, D]
    if (cfg_.qk_norm) ops::rms_norm(q.f32(), q.f32(), b.cross_attn.norm_q.f32(), L, D, eps);
    attn::dense_attention_cpu(attn_out.f32(), nullptr, q.f32(), text->k[static_cast<size_t>(i)].f32(),
                              text->v[static_cast<size_t>(i)].f32(), L, Lt, static_cast<int>(NH), static_cast<int>(HD),
                              attn_scale);               // [L, NH, HD]
    linear(h.f32(), attn_out.f32(), b.cross_attn.o, L);  // [L, D]
    record_stage(rec, tag + "cross_attn_out", h.f32(), {L, D});
    cpu::gated_add(x.f32(), h.f32(), nullptr, L, D);  // x += y

    // FFN, in row chunks so the [rows, Fh] hidden stays small; output into q (free here).
    cpu::modulated_layer_norm(h.f32(), x.f32(), shift2, scale2, L, D, eps);  // [L, D]
    for (int64_t r0 = 0; r0 < L; r0 += ffn_rows) {
      const int64_t n = std::min(ffn_rows, L - r0);
      linear(ffn_hidden.f32(), h.f32() + r0 * D, b.ffn0, n);  // [n, Fh]
      ops::gelu_tanh(ffn_hidden.f32(), ffn_hidden.f32(), n * cfg_.ffn_dim);
      linear(q.f32() + r0 * D, ffn_hidden.f32(), b.ffn2, n);  // [n, D]
    }
    record_stage(rec, tag + "ffn_out", q.f32(), {L, D});
    cpu::gated_add(x.f32(), q.f32(), gate2, L, D);  // x += y · gate2
    record_stage(rec, tag + "out", x.f32(), {L, D});
  }

  // Head: modulation from e (before SiLU), not e0.
  std::vector<float> head_shift(static_cast<size_t>(D)), head_scale(static_cast<size_t>(D));  // [D] each
  const float* hm = w_.head_modulation.f32();                                                 // [1, 2, D]
  for (int64_t j = 0; j < D; ++j) {
    head_shift[static_cast<size_t>(j)] = hm[j] + e[static_cast<size_t>(j)];
    head_scale[static_cast<size_t>(j)] = hm[D + j] + e[static_cast<size_t>(j)];
  }
  cpu::modulated_layer_norm(h.f32(), x.f32(), head_shift.data(), head_scale.data(), L, D, eps);  // [L, D]
  VDIT_ASSIGN(Tensor y, alloc({L, Ko}));  // [L, pt·ph·pw·out_dim]
  linear(y.f32(), h.f32(), w_.head, L);
  record_stage(rec, "head_out", y.f32(), {L, Ko});

  VDIT_ASSIGN(*out, alloc({cfg_.out_dim, F, H, W}));  // [out_dim, F, H, W]
  unpatchify(out->f32(), y.f32(), cfg_.out_dim, F, H, W, p);
  record_stage(rec, "out", out->f32(), out->shape());
  return Status::ok();
}

}  // namespace

std::unique_ptr<WanDit> make_wan_dit_cpu(std::shared_ptr<const TensorFile> file, const WanDitConfig& config,
                                         WanDitWeights weights) {
  return std::make_unique<WanDitCpu>(std::move(file), config, std::move(weights));
}

}  // namespace vdit::model
