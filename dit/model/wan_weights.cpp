// Loading the DiT weights into f32 tensors (zero-copy for aligned f32, converted otherwise), threaded
// over tensors so bf16/f16 checkpoints convert on all cores.
#include "dit/model/wan_weights.h"

#include <cstdint>
#include <map>

#include "dit/core/parallel.h"

namespace vdit::model {
namespace {

Result<Tensor> load_f32(const TensorFile& file, const std::string& name) {
  const TensorEntry* e = file.find(name);
  if (!e) return not_found(file.path() + ": no tensor named \"" + name + "\"");
  if (!dtype_is_float(e->dtype)) {
    return format_error(strfmt("%s: tensor \"%s\" has dtype %s; DiT weights must be f32, bf16, f16 or f64",
                               file.path().c_str(), name.c_str(), dtype_name(e->dtype)));
  }
  const bool aligned = reinterpret_cast<uintptr_t>(e->data) % alignof(float) == 0;
  if (e->dtype == DType::f32 && aligned) return file.tensor(name);  // shares the mapping
  return file.tensor_f32(name);
}

}  // namespace

Result<WanDitWeights> load_wan_dit_weights(const TensorFile& file, const WanDitConfig& config,
                                           const WanTensorNames& names) {
  std::vector<Result<Tensor>> loaded(names.size(), Result<Tensor>(internal_error("not loaded")));
  parallel_for(static_cast<int64_t>(names.size()), [&](int64_t i) {
    loaded[static_cast<size_t>(i)] = load_f32(file, names[static_cast<size_t>(i)].second);
  });
  std::map<std::string, Tensor> by_name;
  for (size_t i = 0; i < names.size(); ++i) {
    if (!loaded[i]) return loaded[i].status();
    by_name.emplace(names[i].first, std::move(loaded[i].value()));
  }
  Status missing;
  auto take = [&](const std::string& official) -> Tensor {
    auto it = by_name.find(official);
    if (it == by_name.end()) {
      if (missing.is_ok()) missing = internal_error("DiT weight \"" + official + "\" was not matched before loading");
      return Tensor();
    }
    return it->second;
  };
  auto linear = [&](const std::string& prefix) { return WanLinear{take(prefix + ".weight"), take(prefix + ".bias")}; };
  auto attention = [&](const std::string& prefix) {
    WanAttentionWeights a{
        linear(prefix + ".q"), linear(prefix + ".k"), linear(prefix + ".v"), linear(prefix + ".o"), {}, {}};
    if (config.qk_norm) {
      a.norm_q = take(prefix + ".norm_q.weight");
      a.norm_k = take(prefix + ".norm_k.weight");
    }
    return a;
  };

  WanDitWeights w;
  w.patch_embedding = linear("patch_embedding");
  if (w.patch_embedding.weight.defined()) {
    VDIT_ASSIGN(w.patch_embedding.weight,
                w.patch_embedding.weight.reshape({config.dim, config.in_dim * config.patch_volume()}));
  }
  w.text_embedding0 = linear("text_embedding.0");
  w.text_embedding2 = linear("text_embedding.2");
  w.time_embedding0 = linear("time_embedding.0");
  w.time_embedding2 = linear("time_embedding.2");
  w.time_projection = linear("time_projection.1");
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const std::string b = "blocks." + std::to_string(i);
    WanBlockWeights bw;
    bw.modulation = take(b + ".modulation");
    bw.self_attn = attention(b + ".self_attn");
    if (config.cross_attn_norm) {
      bw.norm3_weight = take(b + ".norm3.weight");
      bw.norm3_bias = take(b + ".norm3.bias");
    }
    bw.cross_attn = attention(b + ".cross_attn");
    bw.ffn0 = linear(b + ".ffn.0");
    bw.ffn2 = linear(b + ".ffn.2");
    w.blocks.push_back(std::move(bw));
  }
  w.head_modulation = take("head.modulation");
  w.head = linear("head.head");
  if (!missing.is_ok()) return missing;
  return w;
}

}  // namespace vdit::model
