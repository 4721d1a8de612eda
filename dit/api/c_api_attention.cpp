// vdit_attention_* (vdit.h): one attention method from the registry (attention/methods/), configured for the
// caller's model, called on host f32 q/k/v.
#include <string>

#include "attention/methods/method.h"
#include "dit/api/c_api_status.h"

struct vdit_attention {
  std::unique_ptr<vdit::attn::AttentionMethod> method;
  int num_layers = 1, num_steps = 1;
};

namespace vdit::api {
namespace {

Status create(const char* method, const char* config_json, const vdit_attention_model* model, vdit_attention** out) {
  if (!out) return invalid_argument("vdit_attention_new: out is NULL");
  *out = nullptr;
  if (!method || !*method) return invalid_argument("vdit_attention_new: method is empty; use one of " +
                                                   attn::method_names());
  if (!model) return invalid_argument("vdit_attention_new: model is NULL (layers, heads, head_dim are needed)");
  if (model->num_layers <= 0 || model->num_heads <= 0 || model->head_dim <= 0) {
    return invalid_argument(strfmt("vdit_attention_new: num_layers %d, num_heads %d, head_dim %d must be > 0",
                                   model->num_layers, model->num_heads, model->head_dim));
  }
  nlohmann::json config;
  if (config_json && *config_json) {
    config = nlohmann::json::parse(config_json, nullptr, false);
    if (config.is_discarded()) {
      return invalid_argument(std::string("vdit_attention_new: config is not valid JSON: ") + config_json);
    }
  }
  attn::ModelInfo info;
  info.num_layers = model->num_layers, info.num_heads = model->num_heads, info.head_dim = model->head_dim;
  info.grid = {model->grid_f, model->grid_h, model->grid_w};
  info.num_steps = model->num_steps;
  VDIT_ASSIGN(std::unique_ptr<attn::AttentionMethod> m, attn::make_attention(method, config, info));
  auto* a = new vdit_attention;
  a->method = std::move(m);
  a->num_layers = model->num_layers;
  a->num_steps = model->num_steps > 0 ? model->num_steps : 1;
  *out = a;
  return Status::ok();
}

Status forward(vdit_attention* a, const vdit_attention_call* c, const float* q, const float* k, const float* v,
               int64_t L, int NH, int HD, float* out) {
  if (!a) return invalid_argument("vdit_attention_forward: attention is NULL");
  if (!c) return invalid_argument("vdit_attention_forward: call is NULL");
  if (!q || !k || !v || !out) return invalid_argument("vdit_attention_forward: q, k, v and out must not be NULL");
  attn::AttentionCall call;
  call.layer = c->layer, call.num_layers = a->num_layers;
  call.step = c->step, call.num_steps = a->num_steps, call.branch = c->branch;
  call.grid = {c->grid_f, c->grid_h, c->grid_w};
  call.text_len = c->text_len;
  if (call.layer < 0 || call.layer >= call.num_layers || call.step < 0 || call.step >= call.num_steps) {
    return invalid_argument(strfmt("vdit_attention_forward: layer %d of %d, step %d of %d out of range", call.layer,
                                   call.num_layers, call.step, call.num_steps));
  }
  return a->method->forward(call, q, k, v, L, NH, HD, out);
}

}  // namespace
}  // namespace vdit::api

extern "C" {

const char* vdit_attention_methods(void) {
  static const std::string names = vdit::attn::method_names();
  return names.c_str();
}

vdit_status vdit_attention_new(const char* method, const char* config_json, const vdit_attention_model* model,
                               vdit_attention** out) {
  return vdit::api::guarded([&] { return vdit::api::create(method, config_json, model, out); });
}

vdit_status vdit_attention_forward(vdit_attention* attention, const vdit_attention_call* call, const float* q,
                                   const float* k, const float* v, int64_t L, int NH, int HD, float* out) {
  return vdit::api::guarded([&] { return vdit::api::forward(attention, call, q, k, v, L, NH, HD, out); });
}

const char* vdit_attention_name(const vdit_attention* attention) {
  return attention && attention->method ? attention->method->name() : "";
}

void vdit_attention_free(vdit_attention* attention) { delete attention; }

}  // extern "C"
