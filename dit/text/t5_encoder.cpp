// UMT5 encoder forward pass (f32, CPU): input checks, embedding lookup, the layer loop, final norm.
#include "dit/text/t5_encoder.h"

#include <algorithm>

#include "dit/core/parallel.h"
#include "dit/ops/cpu_ops.h"
#include "dit/text/t5_attention.h"
#include "dit/text/t5_input_check.h"

namespace vdit::text {
namespace {

// f32 data of weight `w`: the tensor's own memory when it is f32, else a conversion into `scratch`
// (T5LoadOptions::weights_f32 = false keeps bf16/f16 matrices in the file); scratch holds the largest matrix.
const float* f32_of(const Tensor& w, const Tensor& scratch) {
  if (w.dtype() == DType::f32) return w.f32();
  const int64_t n = w.numel();
  VDIT_ASSERT(scratch.defined() && scratch.numel() >= n);
  const int64_t chunk = 1 << 16;
  const size_t esize = dtype_size(w.dtype());
  const auto* src = static_cast<const uint8_t*>(w.raw());
  float* dst = scratch.f32();
  parallel_for((n + chunk - 1) / chunk, [&](int64_t c) {
    const int64_t b = c * chunk;
    convert_to_f32(dst + b, src + static_cast<size_t>(b) * esize, w.dtype(),
                   static_cast<size_t>(std::min(n, b + chunk) - b));
  });
  return dst;
}

// A conversion buffer as large as the largest non-f32 layer matrix (undefined when all are f32).
Result<Tensor> make_scratch(const T5Weights& w) {
  int64_t n = 0;
  for (const T5LayerWeights& l : w.layers) {
    for (const Tensor* t : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.fc1, &l.fc2}) {
      if (t->dtype() != DType::f32) n = std::max(n, t->numel());
    }
  }
  if (n == 0) return Tensor();
  return Tensor::create(DType::f32, {n});
}

// The forward pass over L tokens; key_mask null = all valid.  // [L, D]
Result<Tensor> forward(const T5Weights& w, const int32_t* ids, const uint8_t* key_mask, int64_t L) {
  const T5Config& c = w.config;
  const int64_t D = c.dim, DA = c.dim_attn, F = c.dim_ffn, NH = c.num_heads;
  VDIT_ASSIGN(Tensor x, Tensor::create(DType::f32, {L, D}));             // [L, D] residual stream
  VDIT_ASSIGN(Tensor h, Tensor::create(DType::f32, {L, D}));             // [L, D] normed input of a sub-layer
  VDIT_ASSIGN(Tensor q, Tensor::create(DType::f32, {L, DA}));            // [L, NH, HD]
  VDIT_ASSIGN(Tensor k, Tensor::create(DType::f32, {L, DA}));            // [L, NH, HD]
  VDIT_ASSIGN(Tensor v, Tensor::create(DType::f32, {L, DA}));            // [L, NH, HD]
  VDIT_ASSIGN(Tensor att, Tensor::create(DType::f32, {L, DA}));          // [L, NH, HD]
  VDIT_ASSIGN(Tensor gate, Tensor::create(DType::f32, {L, F}));          // [L, F]
  VDIT_ASSIGN(Tensor up, Tensor::create(DType::f32, {L, F}));            // [L, F]
  VDIT_ASSIGN(Tensor rel, Tensor::create(DType::f32, {NH, 2 * L - 1}));  // [NH, 2L-1]

  // Embedding rows, converted from the file dtype.  // [L, D]
  const Tensor& emb = w.token_embedding;
  const size_t row_bytes = static_cast<size_t>(D) * dtype_size(emb.dtype());
  parallel_for(L, [&](int64_t i) {
    convert_to_f32(x.f32() + i * D, static_cast<const uint8_t*>(emb.raw()) + static_cast<size_t>(ids[i]) * row_bytes,
                   emb.dtype(), static_cast<size_t>(D));
  });

  const std::vector<int32_t> buckets = t5_relative_buckets(L, c.num_buckets, c.max_distance);  // [2L-1]
  if (c.shared_pos) t5_relative_bias(rel.f32(), w.shared_rel_bias.f32(), buckets, NH);
  VDIT_ASSIGN(const Tensor scratch, make_scratch(w));  // [largest converted matrix]
  for (const T5LayerWeights& l : w.layers) {
    // Self-attention sub-layer.
    ops::rms_norm(h.f32(), x.f32(), l.norm1.f32(), L, D, c.eps);
    ops::linear(q.f32(), h.f32(), f32_of(l.q, scratch), nullptr, L, DA, D);
    ops::linear(k.f32(), h.f32(), f32_of(l.k, scratch), nullptr, L, DA, D);
    ops::linear(v.f32(), h.f32(), f32_of(l.v, scratch), nullptr, L, DA, D);
    if (!c.shared_pos) t5_relative_bias(rel.f32(), l.rel_bias.f32(), buckets, NH);
    T5AttentionParams p;
    p.q = q.f32();
    p.k = k.f32();
    p.v = v.f32();
    p.out = att.f32();
    p.rel_bias = rel.f32();
    p.key_mask = key_mask;
    p.L = L;
    p.num_heads = NH;
    p.head_dim = c.head_dim();
    p.row_stride = DA;
    t5_attention(p);
    ops::linear(x.f32(), att.f32(), f32_of(l.o, scratch), nullptr, L, D, DA, /*accumulate=*/true);  // x += o(att)

    // Gated GELU-tanh FFN sub-layer: x += fc2(fc1(h) * gelu(gate(h))).
    ops::rms_norm(h.f32(), x.f32(), l.norm2.f32(), L, D, c.eps);
    ops::linear(gate.f32(), h.f32(), f32_of(l.gate, scratch), nullptr, L, F, D);
    ops::gelu_tanh(gate.f32(), gate.f32(), L * F);
    ops::linear(up.f32(), h.f32(), f32_of(l.fc1, scratch), nullptr, L, F, D);
    float* u = up.f32();
    const float* g = gate.f32();
    parallel_for_static(L * F, [&](int64_t i) { u[i] *= g[i]; });
    ops::linear(x.f32(), up.f32(), f32_of(l.fc2, scratch), nullptr, L, D, F, /*accumulate=*/true);
  }
  ops::rms_norm(h.f32(), x.f32(), w.final_norm.f32(), L, D, c.eps);
  return h;
}

}  // namespace

Result<T5Encoder> T5Encoder::load(const std::string& path, const T5LoadOptions& options) {
  VDIT_ASSIGN(T5Weights w, load_t5_weights(path, options));
  return from_weights(std::move(w));
}

T5Encoder T5Encoder::from_weights(T5Weights weights) {
  T5Encoder e;
  e.weights_ = std::make_shared<const T5Weights>(std::move(weights));
  return e;
}

const T5Weights& T5Encoder::weights() const {
  static const T5Weights empty;
  return weights_ ? *weights_ : empty;
}

Result<Tensor> T5Encoder::encode(const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask) const {
  if (!weights_) return invalid_argument("T5 encode: encoder is not loaded; call T5Encoder::load first");
  VDIT_TRY(check_t5_inputs(weights_->config, ids, mask));
  const int64_t L = static_cast<int64_t>(ids.size());
  const bool all_valid = std::all_of(mask.begin(), mask.end(), [](uint8_t m) { return m != 0; });
  return forward(*weights_, ids.data(), all_valid ? nullptr : mask.data(), L);
}

Result<Tensor> T5Encoder::encode_trimmed(const std::vector<int32_t>& ids, const std::vector<uint8_t>& mask) const {
  if (!weights_) return invalid_argument("T5 encode: encoder is not loaded; call T5Encoder::load first");
  VDIT_TRY(check_t5_inputs(weights_->config, ids, mask));
  VDIT_ASSIGN(const int64_t len, t5_trimmed_length(ids, mask));
  return forward(*weights_, ids.data(), nullptr, len);
}

}  // namespace vdit::text
