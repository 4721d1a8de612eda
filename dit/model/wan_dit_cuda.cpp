// Wan2.1 DiT forward on the GPU (same math as wan_dit_cpu.cpp, the official autocast precision of wan.md
// §1.3): bf16 GEMMs with fp32 accumulate through cuBLASLt (bias and GELU-tanh in the epilogue), fp32
// residual stream, LayerNorm, RMSNorm, modulation, time MLP and head; bf16 attention (self-attention through
// the attn::SelfAttention's forward_device, cross-attention to the cached 512 text keys/values through cuDNN
// SDPA). Activations come from one arena per latent shape; a forward enqueues every kernel on the model's
// stream and synchronizes once, when the velocity is copied out (or per stage when a recorder is given).
// Without a recorder and with graph-safe attention the enqueued work runs as a CUDA graph (dit_graph_cache.h).
// Does not: run without cuDNN (SDPA), support qk_norm = false or cross_attn_norm = false (not in Wan2.1).
#include "dit/model/wan_dit_cuda.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <mutex>

#include "attention/cuda/cudnn_sdpa.h"
#include "dit/core/check_cuda.h"
#include "dit/model/dit_graph_cache.h"
#include "dit/model/wan_dit_cuda_weights.h"
#include "dit/model/wan_dit_inputs.h"
#include "dit/model/wan_embed.h"
#include "dit/ops/cuda/dit_kernels.h"
#include "dit/ops/cuda/lt_gemm.h"

namespace vdit::model {
namespace {

using ops::cuda::GemmEpilogue;

constexpr int64_t kAlignFloats = 64;          // 256-byte alignment of the pieces of the small buffer
// cuBLASLt candidates timed on the first call of each GEMM shape (lt_gemm.h). Off: on the H200 the
// heuristic's first choice was as fast as the fastest of 8 within run-to-run noise (bench step, round 2),
// and timing-based choices make two model instances differ in the last bits.
constexpr int kGemmAutotune = 0;

int64_t align_up(int64_t n) { return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }

class CudaTextConditioning : public TextConditioning {
 public:
  int64_t context_len() const override { return context_len_; }
  int64_t text_len() const override { return text_len_; }

  const void* owner = nullptr;
  int64_t context_len_ = 0, text_len_ = 0;
  DeviceBuffer k, v;  // [num_layers, text_len, D] bf16: cross-attention keys (after norm_k) and values
};

// Per-shape activations. Comments give what each holds during a block.
struct Arena {
  int64_t F = -1, H = -1, W = -1;
  DeviceBuffer latent;    // [in_dim, F, H, W] f32 input
  DeviceBuffer patches;   // [L, in_dim·pt·ph·pw] bf16
  DeviceBuffer x;         // [L, D] f32 residual stream
  DeviceBuffer h;         // [L, D] bf16 normed input of a GEMM
  DeviceBuffer qkv;       // [L, 3D] bf16 fused projection; [L, D] f32 head input at the end
  DeviceBuffer q, k, v;   // [L, NH, HD] bf16 attention inputs
  DeviceBuffer attn;      // [L, NH, HD] bf16 attention output
  DeviceBuffer y;         // [L, D] bf16 output projection of a sub-layer
  DeviceBuffer hidden;    // [L, Fh] bf16 FFN hidden
  DeviceBuffer head_out;  // [L, out_dim·pt·ph·pw] f32
  DeviceBuffer out;       // [out_dim, F, H, W] f32
  DeviceBuffer rope;      // cos [gf·p0 | gh·p1 | gw·p2], then sin, f32
  size_t bytes = 0;
};

class WanDitCuda : public WanDit {
 public:
  WanDitCuda(const WanDitConfig& cfg, DeviceDitWeights w) : cfg_(cfg), w_(std::move(w)) {}
  ~WanDitCuda() override {
    if (stream_) {
      cudaStreamSynchronize(stream_);
      cudaStreamDestroy(stream_);
    }
  }

  Status init() {
    VDIT_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    VDIT_ASSIGN(gemm_, ops::cuda::LtGemm::create(size_t{64} << 20, kGemmAutotune));
    VDIT_ASSIGN(sdpa_, attn::CudnnSdpa::create());
    const int64_t D = cfg_.dim;
    off_e_hidden_ = align_up(cfg_.freq_dim);
    off_e_ = off_e_hidden_ + align_up(D);
    off_e_act_ = off_e_ + align_up(D);
    off_e0_ = off_e_act_ + align_up(D);
    off_mods_ = off_e0_ + align_up(6 * D);
    off_head_ss_ = off_mods_ + align_up(cfg_.num_layers * 6 * D);
    VDIT_ASSIGN(small_, DeviceBuffer::allocate(static_cast<size_t>(off_head_ss_ + align_up(2 * D)) * 4));
    return Status::ok();
  }

  const WanDitConfig& config() const override { return cfg_; }
  DitDevice device() const override { return DitDevice::cuda; }
  const DeviceDitWeights& weights() const { return w_; }
  void set_graphs(bool enabled) {
    std::lock_guard<std::mutex> lock(mu_);
    graphs_.set_enabled(enabled);
  }
  CudaDitGraphInfo graph_info() const {
    std::lock_guard<std::mutex> lock(mu_);
    return graphs_.info();
  }
  CudaDitMemory memory() const {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t text = static_cast<size_t>(2 * cfg_.num_layers * cfg_.text_len * cfg_.dim * 2);
    return {w_.bytes, arena_.bytes + small_.size() + gemm_->workspace_bytes(), text};
  }

  Result<std::shared_ptr<const TextConditioning>> prepare_text(const Tensor& context,
                                                               const StageRecorder* record) const override;
  Status forward(Tensor* out, const Tensor& x, int64_t timestep, const TextConditioning& text,
                 attn::SelfAttention& attention, const DitStep& step, const StageRecorder* record) const override;

 private:
  Status ensure_arena(int64_t F, int64_t H, int64_t W) const;
  Status run(Tensor* out, const Tensor& x, int64_t timestep, const CudaTextConditioning& text,
             attn::SelfAttention& attention, const DitStep& step, const StageRecorder* rec) const;
  // The device part of a forward on the arena of latent grid F x H x W (the latent and sinusoid uploaded):
  // patch embedding to unpatchify into arena_.out. Only enqueues, unless a recorder synchronizes per stage.
  Status enqueue_forward(int64_t F, int64_t H, int64_t W, const CudaTextConditioning& text,
                         attn::SelfAttention& attention, const attn::AttentionCall& self_call,
                         const StageRecorder* rec) const;

  Status gemm(void* y, const void* x, const DeviceLinear& l, int64_t M,
              GemmEpilogue epi = GemmEpilogue::bias) const {
    ops::cuda::GemmCall c;
    c.y = y, c.x = x, c.w = l.w, c.bias = l.b, c.M = M, c.N = l.N, c.K = l.K;
    c.type = l.bf16 ? ops::cuda::GemmType::bf16 : ops::cuda::GemmType::f32;
    c.epilogue = epi;
    return gemm_->run(c, stream_);
  }
  // Rows x [rows, D] bf16 at `src` (row stride ld) -> RMSNorm (weight) [-> RoPE] -> dst, in place allowed.
  Status rms(void* dst, const void* src, const float* weight, int64_t rows, int64_t ld) const {
    ops::cuda::QkNormParams p;
    p.src[0] = src, p.dst[0] = dst, p.weight[0] = weight, p.count = 1;
    p.rows = rows, p.D = cfg_.dim, p.src_ld = ld, p.HD = static_cast<int>(cfg_.head_dim());
    p.eps = static_cast<float>(cfg_.eps);
    return ops::cuda::qk_norm_rope(p, stream_);
  }
  // Copies a device tensor to the host as f32 and hands it to the recorder (synchronizes the stream).
  Status record(const StageRecorder* rec, const std::string& name, const void* src, bool bf16, const Shape& shape,
                int64_t src_ld = 0) const;
  float* small(int64_t off) const { return small_.as<float>() + off; }

  WanDitConfig cfg_;
  DeviceDitWeights w_;
  cudaStream_t stream_ = nullptr;
  mutable std::mutex mu_;  // one forward / prepare_text at a time: they share the arena and handles
  std::unique_ptr<ops::cuda::LtGemm> gemm_;
  std::unique_ptr<attn::CudnnSdpa> sdpa_;
  DeviceBuffer small_;  // sinusoid, e_hidden, e, SiLU(e), e0, per-block modulation, head shift/scale (f32)
  int64_t off_e_hidden_ = 0, off_e_ = 0, off_e_act_ = 0, off_e0_ = 0, off_mods_ = 0, off_head_ss_ = 0;
  mutable Arena arena_;
  mutable DitGraphRunner graphs_;  // declared last: its graphs go before the handles and buffers they use
};

Status WanDitCuda::record(const StageRecorder* rec, const std::string& name, const void* src, bool bf16,
                          const Shape& shape, int64_t src_ld) const {
  if (!rec || !*rec) return Status::ok();
  VDIT_CHECK(cudaStreamSynchronize(stream_));
  VDIT_ASSIGN(Tensor t, Tensor::create(DType::f32, shape));
  const int64_t cols = shape.back(), rows = t.numel() / cols;
  const size_t es = bf16 ? 2 : 4;
  std::vector<uint8_t> raw(static_cast<size_t>(t.numel()) * es);
  VDIT_CHECK(cudaMemcpy2D(raw.data(), cols * es, src, (src_ld > 0 ? src_ld : cols) * es, cols * es, rows,
                          cudaMemcpyDeviceToHost));
  if (bf16) {
    convert_to_f32(t.f32(), raw.data(), DType::bf16, static_cast<size_t>(t.numel()));
  } else {
    std::memcpy(t.raw(), raw.data(), raw.size());
  }
  (*rec)(name, t);
  return Status::ok();
}

Result<std::shared_ptr<const TextConditioning>> WanDitCuda::prepare_text(const Tensor& context,
                                                                         const StageRecorder* rec) const {
  const int64_t D = cfg_.dim, Lt = cfg_.text_len, Ct = cfg_.text_dim;
  VDIT_ASSIGN(Tensor ctx32, checked_text_context(cfg_, context));  // [Lc, Ct]
  const int64_t Lc = ctx32.dim(0);
  std::vector<uint16_t> padded(static_cast<size_t>(Lt * Ct), 0);  // [Lt, Ct] bf16, rows >= Lc stay zero
  for (int64_t i = 0; i < Lc * Ct; ++i) padded[static_cast<size_t>(i)] = f32_to_bf16(ctx32.f32()[i]);

  std::lock_guard<std::mutex> lock(mu_);
  VDIT_ASSIGN(DeviceBuffer in, DeviceBuffer::allocate(padded.size() * 2));             // [Lt, Ct] bf16
  VDIT_ASSIGN(DeviceBuffer hidden, DeviceBuffer::allocate(static_cast<size_t>(Lt * D) * 2));  // [Lt, D] bf16
  VDIT_ASSIGN(DeviceBuffer ctx, DeviceBuffer::allocate(static_cast<size_t>(Lt * D) * 2));     // [Lt, D] bf16
  VDIT_CHECK(cudaMemcpyAsync(in.data(), padded.data(), padded.size() * 2, cudaMemcpyHostToDevice, stream_));
  VDIT_TRY(gemm(hidden.data(), in.data(), w_.text_embedding0, Lt, GemmEpilogue::bias_gelu_tanh));
  VDIT_TRY(gemm(ctx.data(), hidden.data(), w_.text_embedding2, Lt));
  VDIT_TRY(record(rec, "text_embedding_out", ctx.data(), true, {Lt, D}));

  auto cond = std::make_shared<CudaTextConditioning>();
  cond->owner = this;
  cond->context_len_ = Lc;
  cond->text_len_ = Lt;
  const size_t per_block = static_cast<size_t>(Lt * D) * 2;
  VDIT_ASSIGN(cond->k, DeviceBuffer::allocate(per_block * static_cast<size_t>(cfg_.num_layers)));
  VDIT_ASSIGN(cond->v, DeviceBuffer::allocate(per_block * static_cast<size_t>(cfg_.num_layers)));
  for (int64_t i = 0; i < cfg_.num_layers; ++i) {
    const DeviceBlockWeights& b = w_.blocks[static_cast<size_t>(i)];
    void* k = static_cast<uint8_t*>(cond->k.data()) + per_block * static_cast<size_t>(i);  // [Lt, NH, HD]
    void* v = static_cast<uint8_t*>(cond->v.data()) + per_block * static_cast<size_t>(i);  // [Lt, NH, HD]
    VDIT_TRY(gemm(k, ctx.data(), b.cross_k, Lt));
    VDIT_TRY(rms(k, k, b.cross_norm_k, Lt, D));
    VDIT_TRY(gemm(v, ctx.data(), b.cross_v, Lt));
  }
  VDIT_CHECK(cudaStreamSynchronize(stream_));  // the temporaries are freed on return
  return std::shared_ptr<const TextConditioning>(std::move(cond));
}

Status WanDitCuda::ensure_arena(int64_t F, int64_t H, int64_t W) const {
  Arena& a = arena_;
  if (a.F == F && a.H == H && a.W == W) return Status::ok();
  graphs_.clear();  // captured on the buffers freed next
  a = Arena();      // frees the previous shape's buffers first
  const auto& p = cfg_.patch_size;
  const int64_t gf = F / p[0], gh = H / p[1], gw = W / p[2], L = gf * gh * gw;
  const int64_t D = cfg_.dim, Kp = cfg_.in_dim * cfg_.patch_volume(), Ko = cfg_.out_dim * cfg_.patch_volume();
  auto alloc = [&](DeviceBuffer* b, int64_t elems, size_t es) -> Status {
    auto r = DeviceBuffer::allocate(static_cast<size_t>(elems) * es);
    if (!r) {
      return r.status().with_context(strfmt("DiT activations for a latent of %lldx%lldx%lld (%lld tokens)",
                                            (long long)F, (long long)H, (long long)W, (long long)L));
    }
    *b = std::move(*r);
    a.bytes += b->size();
    return Status::ok();
  };
  VDIT_TRY(alloc(&a.latent, cfg_.in_dim * F * H * W, 4));
  VDIT_TRY(alloc(&a.patches, L * Kp, 2));
  VDIT_TRY(alloc(&a.x, L * D, 4));
  VDIT_TRY(alloc(&a.h, L * D, 2));
  VDIT_TRY(alloc(&a.qkv, L * 3 * D, 2));  // also holds the f32 head input [L, D] (4 bytes <= 6 bytes per D)
  VDIT_TRY(alloc(&a.q, L * D, 2));
  VDIT_TRY(alloc(&a.k, L * D, 2));
  VDIT_TRY(alloc(&a.v, L * D, 2));
  VDIT_TRY(alloc(&a.attn, L * D, 2));
  VDIT_TRY(alloc(&a.y, L * D, 2));
  VDIT_TRY(alloc(&a.hidden, L * cfg_.ffn_dim, 2));
  VDIT_TRY(alloc(&a.head_out, L * Ko, 4));
  VDIT_TRY(alloc(&a.out, cfg_.out_dim * F * H * W, 4));

  const RopeTables tb = make_rope_tables(cfg_.head_dim(), gf, gh, gw);
  std::vector<float> table;
  for (int part = 0; part < 2; ++part)
    for (int ax = 0; ax < 3; ++ax)
      for (double c : (part == 0 ? tb.cos : tb.sin)[static_cast<size_t>(ax)]) table.push_back(static_cast<float>(c));
  VDIT_TRY(alloc(&a.rope, static_cast<int64_t>(table.size()), 4));
  VDIT_CHECK(cudaMemcpy(a.rope.data(), table.data(), table.size() * 4, cudaMemcpyHostToDevice));
  a.F = F, a.H = H, a.W = W;
  return Status::ok();
}

Status WanDitCuda::forward(Tensor* out, const Tensor& x_in, int64_t timestep, const TextConditioning& text_base,
                           attn::SelfAttention& attention, const DitStep& step, const StageRecorder* rec) const {
  if (!out) return invalid_argument("forward: out is null");
  VDIT_TRY(check_dit_forward_inputs(cfg_, x_in, timestep));
  const auto* text = dynamic_cast<const CudaTextConditioning*>(&text_base);
  if (!text || text->owner != this) {
    return invalid_argument("text conditioning was prepared by another model; call prepare_text on this one");
  }
  std::lock_guard<std::mutex> lock(mu_);
  Status st = run(out, x_in, timestep, *text, attention, step, rec);
  if (!st.is_ok()) cudaStreamSynchronize(stream_);  // leave no work in flight on the shared arena
  return st;
}

Status WanDitCuda::run(Tensor* out, const Tensor& x_in, int64_t timestep, const CudaTextConditioning& text,
                       attn::SelfAttention& attention, const DitStep& step, const StageRecorder* rec) const {
  const auto& p = cfg_.patch_size;
  const int64_t F = x_in.dim(1), H = x_in.dim(2), W = x_in.dim(3);
  VDIT_TRY(ensure_arena(F, H, W));
  const Arena& a = arena_;

  // Inputs: the latent and the float64 sinusoid (as the official code) rounded to f32. Pageable host memory:
  // uploaded before (not inside) a graph, in stream order.
  VDIT_CHECK(cudaMemcpyAsync(a.latent.data(), x_in.raw(), x_in.nbytes(), cudaMemcpyHostToDevice, stream_));
  {
    const std::vector<double> s64 = timestep_sinusoid(cfg_.freq_dim, static_cast<double>(timestep));
    std::vector<float> s32(s64.begin(), s64.end());
    VDIT_CHECK(cudaMemcpyAsync(small(0), s32.data(), s32.size() * 4, cudaMemcpyHostToDevice, stream_));
  }

  attn::AttentionCall call;
  call.num_layers = static_cast<int>(cfg_.num_layers);
  call.step = step.step;
  call.num_steps = step.num_steps;
  call.branch = step.branch;
  call.grid = {F / p[0], H / p[1], W / p[2]};
  call.text_len = 0;

  // A graph needs every layer's self-attention call to be capturable, and no recorder (it synchronizes).
  bool graph_ok = !(rec && *rec);
  for (int i = 0; graph_ok && i < call.num_layers; ++i) {
    attn::AttentionCall layer_call = call;
    layer_call.layer = i;
    graph_ok = attention.device_graph_safe(layer_call);
  }
  std::function<DitGraphKey()> key;
  if (graph_ok) {
    key = [&] {
      return DitGraphKey{F, H, W, text.k.data(), text.v.data(), &attention, attention.device_graph_epoch()};
    };
  }
  VDIT_TRY(graphs_.run(key, stream_, [&] { return enqueue_forward(F, H, W, text, attention, call, rec); }));

  VDIT_ASSIGN(*out, Tensor::create(DType::f32, {cfg_.out_dim, F, H, W}));  // [out_dim, F, H, W]
  VDIT_CHECK(cudaMemcpyAsync(out->raw(), a.out.data(), out->nbytes(), cudaMemcpyDeviceToHost, stream_));
  VDIT_CHECK(cudaStreamSynchronize(stream_));
  if (rec && *rec) (*rec)("out", *out);
  return Status::ok();
}

Status WanDitCuda::enqueue_forward(int64_t F, int64_t H, int64_t W, const CudaTextConditioning& text,
                                   attn::SelfAttention& attention, const attn::AttentionCall& self_call,
                                   const StageRecorder* rec) const {
  const auto& p = cfg_.patch_size;
  const int64_t D = cfg_.dim, NH = cfg_.num_heads, HD = cfg_.head_dim(), Lt = cfg_.text_len;
  const int64_t gf = F / p[0], gh = H / p[1], gw = W / p[2], L = gf * gh * gw;
  const int64_t Ko = cfg_.out_dim * cfg_.patch_volume();
  const int64_t N = cfg_.num_layers;
  const float eps = static_cast<float>(cfg_.eps);
  const Arena& a = arena_;
  using bf16_t = uint16_t;

  // Patch embedding (bf16 Conv3d as a GEMM; autocast rounds its output to bf16), into the f32 stream.
  VDIT_TRY(ops::cuda::patchify_bf16(a.patches.data(), a.latent.as<float>(), cfg_.in_dim, F, H, W,
                                    static_cast<int>(p[0]), static_cast<int>(p[1]), static_cast<int>(p[2]), stream_));
  VDIT_TRY(gemm(a.y.data(), a.patches.data(), w_.patch_embedding, L));  // [L, D] bf16
  VDIT_TRY(ops::cuda::bf16_to_f32(a.x.as<float>(), a.y.data(), L * D, stream_));
  VDIT_TRY(record(rec, "patch_embedding_out", a.x.data(), false, {L, D}));

  // Time path in f32: e = MLP(sinusoid), e0 = Linear(SiLU(e)); modulation tables of every block and the head.
  VDIT_TRY(gemm(small(off_e_hidden_), small(0), w_.time_embedding0, 1));  // [D]
  VDIT_TRY(ops::cuda::silu_f32(small(off_e_hidden_), small(off_e_hidden_), D, stream_));
  VDIT_TRY(gemm(small(off_e_), small(off_e_hidden_), w_.time_embedding2, 1));  // [D] e
  VDIT_TRY(ops::cuda::silu_f32(small(off_e_act_), small(off_e_), D, stream_));
  VDIT_TRY(gemm(small(off_e0_), small(off_e_act_), w_.time_projection, 1));  // [6D] e0
  VDIT_TRY(ops::cuda::add_broadcast_f32(small(off_mods_), w_.modulation, small(off_e0_), N * 6 * D, 6 * D, stream_));
  VDIT_TRY(ops::cuda::add_broadcast_f32(small(off_head_ss_), w_.head_modulation, small(off_e_), 2 * D, D, stream_));
  VDIT_TRY(record(rec, "time_embedding_out", small(off_e_), false, {D}));
  VDIT_TRY(record(rec, "time_projection_out", small(off_e0_), false, {6 * D}));

  attn::AttentionCall call = self_call;
  attn::DeviceQKV self_qkv;
  self_qkv.q = a.q.data(), self_qkv.k = a.k.data(), self_qkv.v = a.v.data(), self_qkv.out = a.attn.data();
  self_qkv.L = L, self_qkv.NH = static_cast<int>(NH), self_qkv.HD = static_cast<int>(HD);
  self_qkv.stream = stream_;
  attn::DeviceQKV cross_qkv = self_qkv;
  cross_qkv.Lk = Lt;
  const size_t text_block = static_cast<size_t>(Lt * D) * 2;

  ops::cuda::QkNormParams qk;  // self-attention: q, k normed + RoPE, v gathered, from the fused qkv rows
  for (int j = 0; j < 3; ++j) qk.src[j] = a.qkv.as<bf16_t>() + j * D;
  qk.dst[0] = a.q.data(), qk.dst[1] = a.k.data(), qk.dst[2] = a.v.data();
  qk.count = 3, qk.rows = L, qk.D = D, qk.src_ld = 3 * D, qk.HD = static_cast<int>(HD), qk.eps = eps;
  const auto pairs = rope_axis_pairs(HD);
  qk.cos = a.rope.as<float>();
  qk.sin = qk.cos + (gf * pairs[0] + gh * pairs[1] + gw * pairs[2]);
  for (int j = 0; j < 3; ++j) qk.pairs[j] = static_cast<int>(pairs[static_cast<size_t>(j)]);
  qk.gf = gf, qk.gh = gh, qk.gw = gw;

  ops::cuda::AddNormParams norm;
  norm.x = a.x.as<float>(), norm.rows = L, norm.D = D, norm.eps = eps;

  for (int64_t i = 0; i < N; ++i) {
    const DeviceBlockWeights& b = w_.blocks[static_cast<size_t>(i)];
    const std::string tag = "block" + std::to_string(i) + "_";
    const float* mod = small(off_mods_ + i * 6 * D);  // shift1, scale1, gate1, shift2, scale2, gate2 [D] each
    const float* prev_gate2 = i > 0 ? small(off_mods_ + (i - 1) * 6 * D + 5 * D) : nullptr;

    // x += ffn_out·gate2 of the previous block (fused), then h = LN(x)·(1 + scale1) + shift1.
    norm.y = i > 0 ? a.y.data() : nullptr;
    norm.gate = prev_gate2;
    norm.out = a.h.data(), norm.out_bf16 = true;
    norm.mul = mod + D, norm.add = mod, norm.one_plus = true;
    norm.round_norm_bf16 = i == 0;  // block 0's input is the bf16 patch embedding (WanLayerNorm's type_as)
    VDIT_TRY(ops::cuda::add_layer_norm(norm, stream_));
    if (i > 0) VDIT_TRY(record(rec, "block" + std::to_string(i - 1) + "_out", a.x.data(), false, {L, D}));
    VDIT_TRY(record(rec, tag + "in", a.x.data(), false, {L, D}));

    // Self-attention.
    VDIT_TRY(gemm(a.qkv.data(), a.h.data(), b.qkv, L));  // [L, 3D]
    VDIT_TRY(record(rec, tag + "self_attn_q_out", a.qkv.data(), true, {L, D}, 3 * D));
    qk.weight[0] = b.norm_q, qk.weight[1] = b.norm_k, qk.weight[2] = nullptr;
    VDIT_TRY(ops::cuda::qk_norm_rope(qk, stream_));  // q, k [L, NH, HD] normed + RoPE; v [L, NH, HD]
    call.layer = static_cast<int>(i);
    Status st = attention.forward_device(call, self_qkv);  // attn [L, NH, HD]
    if (!st.is_ok()) {
      return st.with_context(strfmt("self-attention (%s) of block %lld", attention.name(), (long long)i));
    }
    VDIT_TRY(gemm(a.y.data(), a.attn.data(), b.o, L));  // [L, D]
    VDIT_TRY(record(rec, tag + "self_attn_out", a.y.data(), true, {L, D}));

    // x += y·gate1, then h = LN_affine(x; norm3).
    norm.y = a.y.data(), norm.gate = mod + 2 * D;
    norm.mul = b.norm3_w, norm.add = b.norm3_b, norm.one_plus = false, norm.round_norm_bf16 = false;
    VDIT_TRY(ops::cuda::add_layer_norm(norm, stream_));
    VDIT_TRY(record(rec, tag + "norm3_out", a.h.data(), true, {L, D}));

    // Cross-attention to the prompt's cached keys/values (no modulation, gate, RoPE or mask).
    VDIT_TRY(gemm(a.q.data(), a.h.data(), b.cross_q, L));  // [L, D]
    VDIT_TRY(rms(a.q.data(), a.q.data(), b.cross_norm_q, L, D));
    cross_qkv.k = static_cast<const uint8_t*>(text.k.data()) + text_block * static_cast<size_t>(i);
    cross_qkv.v = static_cast<const uint8_t*>(text.v.data()) + text_block * static_cast<size_t>(i);
    st = sdpa_->forward(cross_qkv);  // attn [L, NH, HD]
    if (!st.is_ok()) return st.with_context(strfmt("cross-attention of block %lld", (long long)i));
    VDIT_TRY(gemm(a.y.data(), a.attn.data(), b.cross_o, L));  // [L, D]
    VDIT_TRY(record(rec, tag + "cross_attn_out", a.y.data(), true, {L, D}));

    // x += y, then h = LN(x)·(1 + scale2) + shift2; FFN with GELU-tanh in the first GEMM's epilogue.
    norm.y = a.y.data(), norm.gate = nullptr;
    norm.mul = mod + 4 * D, norm.add = mod + 3 * D, norm.one_plus = true;
    VDIT_TRY(ops::cuda::add_layer_norm(norm, stream_));
    VDIT_TRY(gemm(a.hidden.data(), a.h.data(), b.ffn0, L, GemmEpilogue::bias_gelu_tanh));  // [L, Fh]
    VDIT_TRY(gemm(a.y.data(), a.hidden.data(), b.ffn2, L));                                // [L, D]
    VDIT_TRY(record(rec, tag + "ffn_out", a.y.data(), true, {L, D}));
  }

  // x += ffn_out·gate2 of the last block, then the head (f32): LN(x)·(1 + scale) + shift from e, Linear.
  float* head_in = a.qkv.as<float>();  // [L, D] f32
  norm.y = a.y.data(), norm.gate = small(off_mods_ + (N - 1) * 6 * D + 5 * D);
  norm.out = head_in, norm.out_bf16 = false;
  norm.mul = small(off_head_ss_ + D), norm.add = small(off_head_ss_), norm.one_plus = true;
  norm.round_norm_bf16 = false;
  VDIT_TRY(ops::cuda::add_layer_norm(norm, stream_));
  VDIT_TRY(record(rec, "block" + std::to_string(N - 1) + "_out", a.x.data(), false, {L, D}));
  VDIT_TRY(gemm(a.head_out.data(), head_in, w_.head, L));  // [L, Ko] f32
  VDIT_TRY(record(rec, "head_out", a.head_out.data(), false, {L, Ko}));
  VDIT_TRY(ops::cuda::unpatchify_f32(a.out.as<float>(), a.head_out.as<float>(), cfg_.out_dim, F, H, W,
                                     static_cast<int>(p[0]), static_cast<int>(p[1]), static_cast<int>(p[2]), stream_));
  return Status::ok();
}

Status check_cuda_config(const WanDitConfig& c) {
  const int64_t hd = c.head_dim();
  if (c.dim % 8 != 0 || hd % 8 != 0 || hd > 256) {
    return unsupported(strfmt("the CUDA DiT needs dim and head_dim multiples of 8 and head_dim <= 256 (cuDNN "
                              "attention), got dim %lld, head_dim %lld; use the cpu device",
                              (long long)c.dim, (long long)hd));
  }
  if (!c.qk_norm || !c.cross_attn_norm) {
    return unsupported("the CUDA DiT implements Wan2.1 with qk_norm and cross_attn_norm (both true in every "
                       "release); use the cpu device for this config");
  }
  if (c.ffn_dim % 8 != 0 || c.text_dim % 8 != 0) {
    return unsupported(strfmt("the CUDA DiT needs ffn_dim and text_dim multiples of 8, got %lld and %lld",
                              (long long)c.ffn_dim, (long long)c.text_dim));
  }
  return Status::ok();
}

Result<std::unique_ptr<WanDit>> finish(const WanDitConfig& config, Result<DeviceDitWeights> weights) {
  if (!weights) return weights.status();
  auto model = std::make_unique<WanDitCuda>(config, std::move(*weights));
  VDIT_TRY(model->init());
  return std::unique_ptr<WanDit>(std::move(model));
}

const WanDitCuda* as_cuda(const WanDit& model) { return dynamic_cast<const WanDitCuda*>(&model); }

}  // namespace

Result<std::unique_ptr<WanDit>> make_wan_dit_cuda(const WanDitConfig& config, const WanDitWeights& weights) {
  VDIT_TRY(validate_wan_dit_config(config));
  VDIT_TRY(check_cuda_config(config));
  if (cuda_device_count() == 0) return unsupported("no CUDA device is visible; use the cpu device");
  return finish(config, upload_dit_weights(config, weights));
}

Result<std::unique_ptr<WanDit>> make_random_wan_dit_cuda(const WanDitConfig& config, uint64_t seed) {
  VDIT_TRY(validate_wan_dit_config(config));
  VDIT_TRY(check_cuda_config(config));
  if (cuda_device_count() == 0) return unsupported("no CUDA device is visible");
  return finish(config, random_dit_weights(config, seed));
}

Result<WanDitWeights> download_wan_dit_cuda_weights(const WanDit& model) {
  const WanDitCuda* m = as_cuda(model);
  if (!m) return invalid_argument("download_wan_dit_cuda_weights: not a CUDA DiT");
  return download_dit_weights(m->config(), m->weights());
}

Result<CudaDitMemory> cuda_dit_memory(const WanDit& model) {
  const WanDitCuda* m = as_cuda(model);
  if (!m) return invalid_argument("cuda_dit_memory: not a CUDA DiT");
  return m->memory();
}

Status set_cuda_dit_graphs(WanDit& model, bool enabled) {
  auto* m = dynamic_cast<WanDitCuda*>(&model);
  if (!m) return invalid_argument("set_cuda_dit_graphs: not a CUDA DiT");
  m->set_graphs(enabled);
  return Status::ok();
}

Result<CudaDitGraphInfo> cuda_dit_graph_info(const WanDit& model) {
  const WanDitCuda* m = as_cuda(model);
  if (!m) return invalid_argument("cuda_dit_graph_info: not a CUDA DiT");
  return m->graph_info();
}

}  // namespace vdit::model
