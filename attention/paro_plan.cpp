// PARO plan files: validation, loading (memory-mapped masks) and saving (see paro_plan.h).
#include "attention/paro_plan.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "io/safetensors_writer.h"
#include "io/tensor_file.h"

namespace vdit::attn {
namespace {

constexpr const char* kFormat = "vdit-paro-plan-1";

// An integer metadata value; `fallback` when absent (or an error when `required`).
Result<int64_t> meta_int(const std::map<std::string, std::string>& meta, const char* key, int64_t fallback,
                         bool required, const std::string& what) {
  auto it = meta.find(key);
  if (it == meta.end()) {
    if (required) return format_error(strfmt("%s: metadata \"%s\" is missing", what.c_str(), key));
    return fallback;
  }
  const nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  if (!j.is_number_integer()) {
    return format_error(
        strfmt("%s: metadata \"%s\" = \"%s\" is not an integer", what.c_str(), key, it->second.c_str()));
  }
  return j.get<int64_t>();
}

}  // namespace

const uint8_t* ParoPlan::mask(int group, int layer, int head) const {
  const size_t per = static_cast<size_t>(nq * nq);
  return block_mask.data<uint8_t>() + ((static_cast<size_t>(group) * layers + layer) * heads + head) * per;
}

Status validate_paro_plan(const ParoPlan& p, const std::string& what) {
  if (p.block != 64 && p.block != 128) {
    return format_error(strfmt("%s: block %d is not supported (64 or 128)", what.c_str(), p.block));
  }
  if (p.grid.f <= 0 || p.grid.h <= 0 || p.grid.w <= 0) {
    return format_error(strfmt("%s: grid %lldx%lldx%lld must be positive", what.c_str(), (long long)p.grid.f,
                               (long long)p.grid.h, (long long)p.grid.w));
  }
  if (p.text_len < 0) return format_error(what + ": negative text length");
  if (p.groups < 1 || p.layers < 1 || p.heads < 1) {
    return format_error(strfmt("%s: %d groups, %d layers, %d heads: each must be >= 1", what.c_str(), p.groups,
                               p.layers, p.heads));
  }
  const int64_t Lv = p.grid.tokens(), ceil_nq = (Lv + p.block - 1) / p.block, floor_nq = Lv / p.block;
  if (p.nq != ceil_nq && !(p.nq == floor_nq && floor_nq >= 1)) {
    return format_error(strfmt("%s: masks have %lld blocks per side, but %lld video tokens in blocks of %d need %lld "
                               "(or %lld with a dense tail)",
                               what.c_str(), (long long)p.nq, (long long)Lv, p.block, (long long)ceil_nq,
                               (long long)floor_nq));
  }
  if (static_cast<int64_t>(p.order.size()) != static_cast<int64_t>(p.layers) * p.heads) {
    return format_error(strfmt("%s: %zu orders for %d layers x %d heads", what.c_str(), p.order.size(), p.layers,
                               p.heads));
  }
  for (size_t i = 0; i < p.order.size(); ++i) {
    if (p.order[i] < 0 || p.order[i] > 5) {
      return format_error(strfmt("%s: order of layer %zu, head %zu is %d; expected 0..5 (FHW, FWH, HWF, HFW, WHF, "
                                 "WFH)",
                                 what.c_str(), i / static_cast<size_t>(p.heads), i % static_cast<size_t>(p.heads),
                                 p.order[i]));
    }
  }
  const Shape want = {p.groups, p.layers, p.heads, p.nq, p.nq};
  if (!p.block_mask.defined() || p.block_mask.shape() != want ||
      (p.block_mask.dtype() != DType::u8 && p.block_mask.dtype() != DType::boolean)) {
    return format_error(strfmt("%s: block_mask must be uint8 %s", what.c_str(), shape_str(want).c_str()));
  }
  return Status::ok();
}

Result<ParoPlan> load_paro_plan(const std::string& path) {
  const std::string what = "PARO plan \"" + path + "\"";
  VDIT_ASSIGN(auto file, open_tensor_file(path));
  const TensorEntry* order = file->find("order");
  const TensorEntry* mask = file->find("block_mask");
  if (!order || !mask) {
    return format_error(what + ": expected tensors \"order\" int32 [layers, heads] and \"block_mask\" uint8 "
                               "[groups, layers, heads, nQ, nK] (made by `vdit calibrate paro`)");
  }
  if (order->shape.size() != 2 || (order->dtype != DType::i32 && order->dtype != DType::i64)) {
    return format_error(strfmt("%s: \"order\" is %s %s; expected int32 [layers, heads]", what.c_str(),
                               dtype_name(order->dtype), shape_str(order->shape).c_str()));
  }
  if (mask->shape.size() != 5 || mask->shape[3] != mask->shape[4]) {
    return format_error(strfmt("%s: \"block_mask\" has shape %s; expected [groups, layers, heads, nQ, nQ]",
                               what.c_str(), shape_str(mask->shape).c_str()));
  }
  ParoPlan p;
  p.groups = static_cast<int>(mask->shape[0]);
  p.layers = static_cast<int>(order->shape[0]);
  p.heads = static_cast<int>(order->shape[1]);
  p.nq = mask->shape[3];
  if (mask->shape[1] != p.layers || mask->shape[2] != p.heads) {
    return format_error(strfmt("%s: \"block_mask\" %s does not match \"order\" %s (layers, heads)", what.c_str(),
                               shape_str(mask->shape).c_str(), shape_str(order->shape).c_str()));
  }
  p.order.resize(static_cast<size_t>(p.layers) * p.heads);
  for (size_t i = 0; i < p.order.size(); ++i) {
    const int64_t v = order->dtype == DType::i32 ? reinterpret_cast<const int32_t*>(order->data)[i]
                                                 : reinterpret_cast<const int64_t*>(order->data)[i];
    p.order[i] = static_cast<int32_t>(std::clamp<int64_t>(v, -1, 1 << 30));  // validated below
  }
  VDIT_ASSIGN(p.block_mask, file->tensor("block_mask"));
  p.metadata = file->metadata();
  auto g = p.metadata.find("grid");
  if (g == p.metadata.end()) return format_error(what + ": metadata \"grid\" ([F, H, W] latent grid) is missing");
  const nlohmann::json gj = nlohmann::json::parse(g->second, nullptr, false);
  if (!gj.is_array() || gj.size() != 3 || !gj[0].is_number_integer() || !gj[1].is_number_integer() ||
      !gj[2].is_number_integer()) {
    return format_error(strfmt("%s: metadata \"grid\" = \"%s\"; expected [F, H, W]", what.c_str(), g->second.c_str()));
  }
  p.grid = {gj[0].get<int64_t>(), gj[1].get<int64_t>(), gj[2].get<int64_t>()};
  VDIT_ASSIGN(p.text_len, meta_int(p.metadata, "text", 0, false, what));
  VDIT_ASSIGN(int64_t block, meta_int(p.metadata, "block", 64, false, what));
  VDIT_ASSIGN(int64_t steps, meta_int(p.metadata, "steps", 0, false, what));
  p.block = static_cast<int>(std::clamp<int64_t>(block, -1, 1 << 20));
  p.steps = static_cast<int>(std::clamp<int64_t>(steps, 0, 1 << 20));
  for (const char* k : {"grid", "text", "block", "steps", "format"}) p.metadata.erase(k);
  VDIT_TRY(validate_paro_plan(p, what));
  return p;
}

Status save_paro_plan(const std::string& path, const ParoPlan& p) {
  VDIT_TRY(validate_paro_plan(p, "PARO plan for \"" + path + "\""));
  VDIT_ASSIGN(Tensor order, Tensor::create(DType::i32, {p.layers, p.heads}));  // [layers, heads]
  std::copy(p.order.begin(), p.order.end(), order.data<int32_t>());
  Tensor mask = p.block_mask;  // [groups, layers, heads, nq, nq]
  if (mask.dtype() != DType::u8) {
    VDIT_ASSIGN(mask, Tensor::create(DType::u8, p.block_mask.shape()));
    std::copy_n(p.block_mask.data<uint8_t>(), p.block_mask.numel(), mask.data<uint8_t>());
  }
  std::map<std::string, std::string> meta = p.metadata;
  meta["format"] = kFormat;
  meta["grid"] = nlohmann::json({p.grid.f, p.grid.h, p.grid.w}).dump();
  meta["text"] = std::to_string(p.text_len);
  meta["block"] = std::to_string(p.block);
  meta["steps"] = std::to_string(p.steps);
  return save_safetensors(path, {{"order", order}, {"block_mask", mask}}, meta);
}

int paro_step_group(int step, int num_steps, int groups) {
  if (num_steps <= 0 || groups <= 1) return 0;
  const int64_t g = static_cast<int64_t>(std::max(step, 0)) * groups / num_steps;
  return static_cast<int>(std::min<int64_t>(g, groups - 1));
}

}  // namespace vdit::attn
