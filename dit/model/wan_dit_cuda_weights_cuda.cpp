// Building the DiT's device weights (wan_dit_cuda_weights.h). One walk over the model's tensors serves both
// sources: host f32 tensors converted to bf16 on all cores and copied, or Philox random values generated
// in place on the GPU (dit/core/rng.h), one seed per tensor in walk order.
#include "dit/model/wan_dit_cuda_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "dit/core/check_cuda.h"
#include "dit/core/parallel.h"
#include "dit/ops/cuda/dit_kernels.h"

namespace vdit::model {
namespace {

// Random initialisation of one tensor: offset + scale·N(0, 1).
struct RandomInit {
  float scale = 1.f;
  float offset = 0.f;
};

class Builder {
 public:
  Builder(const WanDitConfig& cfg, const WanDitWeights* host, uint64_t seed, DeviceDitWeights* out)
      : cfg_(cfg), host_(host), seed_(seed), out_(out) {}

  // A device tensor of n elements: the host tensors `parts` concatenated, or random values.
  Result<void*> tensor(bool bf16, int64_t n, const std::vector<const Tensor*>& parts, RandomInit init) {
    const size_t bytes = static_cast<size_t>(n) * (bf16 ? 2 : 4);
    auto buf = DeviceBuffer::allocate(bytes);
    if (!buf) return buf.status().with_context(strfmt("allocating the DiT weights on the GPU (%.2f GiB so far)",
                                                      out_->bytes / 1073741824.0));
    void* dst = buf->data();
    out_->storage.push_back(std::move(*buf));
    out_->bytes += bytes;
    const uint64_t tensor_seed = seed_ * 0x9E3779B97F4A7C15ull + (++counter_);
    if (!host_) {
      VDIT_TRY(ops::cuda::fill_gaussian(dst, bf16, n, tensor_seed, init.scale, init.offset, nullptr));
      return dst;
    }
    int64_t at = 0;
    for (const Tensor* t : parts) {
      if (!t || !t->defined() || t->dtype() != DType::f32) return internal_error("DiT upload: missing f32 host tensor");
      if (at + t->numel() > n) return internal_error("DiT upload: host tensors larger than the device tensor");
      uint8_t* d = static_cast<uint8_t*>(dst) + static_cast<size_t>(at) * (bf16 ? 2 : 4);
      if (bf16) {
        staging_.resize(static_cast<size_t>(t->numel()));
        const float* src = t->f32();
        uint16_t* st = staging_.data();
        const int64_t chunk = 1 << 16;
        parallel_for((t->numel() + chunk - 1) / chunk, [&](int64_t c) {
          const int64_t b = c * chunk, e = std::min(t->numel(), b + chunk);
          for (int64_t i = b; i < e; ++i) st[i] = f32_to_bf16(src[i]);
        });
        VDIT_CHECK(cudaMemcpy(d, st, static_cast<size_t>(t->numel()) * 2, cudaMemcpyHostToDevice));
      } else {
        VDIT_CHECK(cudaMemcpy(d, t->raw(), t->nbytes(), cudaMemcpyHostToDevice));
      }
      at += t->numel();
    }
    if (at != n) return internal_error("DiT upload: host tensors smaller than the device tensor");
    return dst;
  }

  // A linear layer [N, K] from `parts` stacked along N (random: weights N(0, 1/K), biases 0.05·N).
  Result<DeviceLinear> linear(bool bf16, int64_t N, int64_t K, const std::vector<const WanLinear*>& parts) {
    std::vector<const Tensor*> ws, bs;
    for (const WanLinear* l : parts) {
      ws.push_back(l ? &l->weight : nullptr);
      bs.push_back(l ? &l->bias : nullptr);
    }
    DeviceLinear d;
    d.N = N, d.K = K, d.bf16 = bf16;
    VDIT_ASSIGN(d.w, tensor(bf16, N * K, ws, {1.f / std::sqrt(static_cast<float>(K)), 0.f}));
    VDIT_ASSIGN(d.b, tensor(bf16, N, bs, {0.05f, 0.f}));
    return d;
  }

  Result<const float*> vec(int64_t n, const Tensor* t, RandomInit init) {
    VDIT_ASSIGN(void* p, tensor(false, n, {t}, init));
    return static_cast<const float*>(p);
  }

  const WanDitWeights* host() const { return host_; }

 private:
  const WanDitConfig& cfg_;
  const WanDitWeights* host_;
  uint64_t seed_;
  uint64_t counter_ = 0;
  DeviceDitWeights* out_;
  std::vector<uint16_t> staging_;
};

Result<DeviceDitWeights> build(const WanDitConfig& cfg, const WanDitWeights* h, uint64_t seed) {
  DeviceDitWeights w;
  Builder b(cfg, h, seed, &w);
  const int64_t D = cfg.dim, Fh = cfg.ffn_dim;
  const RandomInit norm_init{0.1f, 1.f};
  const RandomInit mod_init{1.f / std::sqrt(static_cast<float>(D)), 0.f};
  auto pick = [&](auto member) { return h ? &(h->*member) : nullptr; };
  VDIT_ASSIGN(w.patch_embedding,
              b.linear(true, D, cfg.in_dim * cfg.patch_volume(), {pick(&WanDitWeights::patch_embedding)}));
  VDIT_ASSIGN(w.text_embedding0, b.linear(true, D, cfg.text_dim, {pick(&WanDitWeights::text_embedding0)}));
  VDIT_ASSIGN(w.text_embedding2, b.linear(true, D, D, {pick(&WanDitWeights::text_embedding2)}));
  VDIT_ASSIGN(w.time_embedding0, b.linear(false, D, cfg.freq_dim, {pick(&WanDitWeights::time_embedding0)}));
  VDIT_ASSIGN(w.time_embedding2, b.linear(false, D, D, {pick(&WanDitWeights::time_embedding2)}));
  VDIT_ASSIGN(w.time_projection, b.linear(false, 6 * D, D, {pick(&WanDitWeights::time_projection)}));
  {
    std::vector<const Tensor*> mods;
    for (int64_t i = 0; i < cfg.num_layers; ++i) mods.push_back(h ? &h->blocks[static_cast<size_t>(i)].modulation : nullptr);
    VDIT_ASSIGN(void* m, b.tensor(false, cfg.num_layers * 6 * D, mods, mod_init));
    w.modulation = static_cast<const float*>(m);
  }
  for (int64_t i = 0; i < cfg.num_layers; ++i) {
    const WanBlockWeights* hb = h ? &h->blocks[static_cast<size_t>(i)] : nullptr;
    auto lin = [&](const WanLinear WanAttentionWeights::*m, bool cross) -> const WanLinear* {
      return hb ? &((cross ? hb->cross_attn : hb->self_attn).*m) : nullptr;
    };
    DeviceBlockWeights db;
    VDIT_ASSIGN(db.qkv, b.linear(true, 3 * D, D,
                                 {lin(&WanAttentionWeights::q, false), lin(&WanAttentionWeights::k, false),
                                  lin(&WanAttentionWeights::v, false)}));
    VDIT_ASSIGN(db.o, b.linear(true, D, D, {lin(&WanAttentionWeights::o, false)}));
    if (cfg.qk_norm) {
      VDIT_ASSIGN(db.norm_q, b.vec(D, hb ? &hb->self_attn.norm_q : nullptr, norm_init));
      VDIT_ASSIGN(db.norm_k, b.vec(D, hb ? &hb->self_attn.norm_k : nullptr, norm_init));
    }
    if (cfg.cross_attn_norm) {
      VDIT_ASSIGN(db.norm3_w, b.vec(D, hb ? &hb->norm3_weight : nullptr, norm_init));
      VDIT_ASSIGN(db.norm3_b, b.vec(D, hb ? &hb->norm3_bias : nullptr, {0.05f, 0.f}));
    }
    VDIT_ASSIGN(db.cross_q, b.linear(true, D, D, {lin(&WanAttentionWeights::q, true)}));
    VDIT_ASSIGN(db.cross_k, b.linear(true, D, D, {lin(&WanAttentionWeights::k, true)}));
    VDIT_ASSIGN(db.cross_v, b.linear(true, D, D, {lin(&WanAttentionWeights::v, true)}));
    VDIT_ASSIGN(db.cross_o, b.linear(true, D, D, {lin(&WanAttentionWeights::o, true)}));
    if (cfg.qk_norm) {
      VDIT_ASSIGN(db.cross_norm_q, b.vec(D, hb ? &hb->cross_attn.norm_q : nullptr, norm_init));
      VDIT_ASSIGN(db.cross_norm_k, b.vec(D, hb ? &hb->cross_attn.norm_k : nullptr, norm_init));
    }
    VDIT_ASSIGN(db.ffn0, b.linear(true, Fh, D, {hb ? &hb->ffn0 : nullptr}));
    VDIT_ASSIGN(db.ffn2, b.linear(true, D, Fh, {hb ? &hb->ffn2 : nullptr}));
    w.blocks.push_back(db);
  }
  VDIT_ASSIGN(w.head_modulation, b.vec(2 * D, h ? &h->head_modulation : nullptr, mod_init));
  VDIT_ASSIGN(w.head, b.linear(false, cfg.out_dim * cfg.patch_volume(), D, {pick(&WanDitWeights::head)}));
  VDIT_CHECK(cudaDeviceSynchronize());  // random fills are asynchronous; report their errors here
  return w;
}

// n elements at `src` (device, bf16 or fp32) as a new f32 host tensor of `shape`.
Result<Tensor> fetch(const void* src, bool bf16, Shape shape) {
  VDIT_ASSIGN(Tensor t, Tensor::create(DType::f32, shape));
  const size_t n = static_cast<size_t>(t.numel());
  if (bf16) {
    std::vector<uint16_t> raw(n);
    VDIT_CHECK(cudaMemcpy(raw.data(), src, n * 2, cudaMemcpyDeviceToHost));
    convert_to_f32(t.f32(), raw.data(), DType::bf16, n);
  } else {
    VDIT_CHECK(cudaMemcpy(t.f32(), src, n * 4, cudaMemcpyDeviceToHost));
  }
  return t;
}

// Rows [row0, row0 + N) of a device linear as a host WanLinear.
Result<WanLinear> fetch_linear(const DeviceLinear& d, int64_t row0, int64_t N) {
  const size_t es = d.bf16 ? 2 : 4;
  WanLinear l;
  VDIT_ASSIGN(l.weight, fetch(static_cast<const uint8_t*>(d.w) + row0 * d.K * es, d.bf16, {N, d.K}));
  VDIT_ASSIGN(l.bias, fetch(static_cast<const uint8_t*>(d.b) + row0 * es, d.bf16, {N}));
  return l;
}

Result<WanLinear> fetch_linear(const DeviceLinear& d) { return fetch_linear(d, 0, d.N); }

}  // namespace

Result<DeviceDitWeights> upload_dit_weights(const WanDitConfig& config, const WanDitWeights& host) {
  if (static_cast<int64_t>(host.blocks.size()) != config.num_layers) {
    return internal_error("DiT upload: host weights and config disagree on the number of blocks");
  }
  return build(config, &host, 0);
}

Result<DeviceDitWeights> random_dit_weights(const WanDitConfig& config, uint64_t seed) {
  return build(config, nullptr, seed);
}

Result<WanDitWeights> download_dit_weights(const WanDitConfig& cfg, const DeviceDitWeights& d) {
  const int64_t D = cfg.dim;
  WanDitWeights w;
  VDIT_ASSIGN(w.patch_embedding, fetch_linear(d.patch_embedding));
  VDIT_ASSIGN(w.text_embedding0, fetch_linear(d.text_embedding0));
  VDIT_ASSIGN(w.text_embedding2, fetch_linear(d.text_embedding2));
  VDIT_ASSIGN(w.time_embedding0, fetch_linear(d.time_embedding0));
  VDIT_ASSIGN(w.time_embedding2, fetch_linear(d.time_embedding2));
  VDIT_ASSIGN(w.time_projection, fetch_linear(d.time_projection));
  for (int64_t i = 0; i < cfg.num_layers; ++i) {
    const DeviceBlockWeights& db = d.blocks[static_cast<size_t>(i)];
    WanBlockWeights b;
    VDIT_ASSIGN(b.modulation, fetch(d.modulation + i * 6 * D, false, {1, 6, D}));
    VDIT_ASSIGN(b.self_attn.q, fetch_linear(db.qkv, 0, D));
    VDIT_ASSIGN(b.self_attn.k, fetch_linear(db.qkv, D, D));
    VDIT_ASSIGN(b.self_attn.v, fetch_linear(db.qkv, 2 * D, D));
    VDIT_ASSIGN(b.self_attn.o, fetch_linear(db.o));
    if (cfg.qk_norm) {
      VDIT_ASSIGN(b.self_attn.norm_q, fetch(db.norm_q, false, {D}));
      VDIT_ASSIGN(b.self_attn.norm_k, fetch(db.norm_k, false, {D}));
      VDIT_ASSIGN(b.cross_attn.norm_q, fetch(db.cross_norm_q, false, {D}));
      VDIT_ASSIGN(b.cross_attn.norm_k, fetch(db.cross_norm_k, false, {D}));
    }
    if (cfg.cross_attn_norm) {
      VDIT_ASSIGN(b.norm3_weight, fetch(db.norm3_w, false, {D}));
      VDIT_ASSIGN(b.norm3_bias, fetch(db.norm3_b, false, {D}));
    }
    VDIT_ASSIGN(b.cross_attn.q, fetch_linear(db.cross_q));
    VDIT_ASSIGN(b.cross_attn.k, fetch_linear(db.cross_k));
    VDIT_ASSIGN(b.cross_attn.v, fetch_linear(db.cross_v));
    VDIT_ASSIGN(b.cross_attn.o, fetch_linear(db.cross_o));
    VDIT_ASSIGN(b.ffn0, fetch_linear(db.ffn0));
    VDIT_ASSIGN(b.ffn2, fetch_linear(db.ffn2));
    w.blocks.push_back(std::move(b));
  }
  VDIT_ASSIGN(w.head_modulation, fetch(d.head_modulation, false, {1, 2, D}));
  VDIT_ASSIGN(w.head, fetch_linear(d.head));
  return w;
}

}  // namespace vdit::model
