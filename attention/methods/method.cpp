// AttentionMethod base (schedule, dense/sparse dispatch, statistics, recording), the method registry and
// make_attention(). Method-specific logic lives in the other files of this folder.
#include "attention/methods/method.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "attention/block_sparse_cpu.h"
#include "attention/cuda/cudnn_sdpa.h"
#include "attention/cuda/planners/device_sync.h"
#include "attention/dense_cpu.h"

namespace vdit::attn {

// Defined in the file attention/CMakeLists.txt generates from the VDIT_REGISTER_ATTENTION_METHOD lines.
void register_builtin_attention_methods(MethodRegistry& registry);

float QKV::scale() const { return 1.0f / std::sqrt(static_cast<float>(HD)); }

// ---- schedule --------------------------------------------------------------------------------------

bool Schedule::is_dense(const AttentionCall& call) const {
  if (call.step < dense_steps) return true;
  if (dense_step_fraction > 0 && call.step < static_cast<int>(std::ceil(dense_step_fraction * call.num_steps))) {
    return true;
  }
  if (call.layer < dense_layers) return true;
  return std::find(dense_layer_list.begin(), dense_layer_list.end(), call.layer) != dense_layer_list.end();
}

Status Schedule::parse(ConfigReader& cfg) {
  VDIT_TRY(cfg.get_int("dense_steps", &dense_steps, 0, 1000000));
  VDIT_TRY(cfg.get_double("dense_step_fraction", &dense_step_fraction, 0.0, 1.0));
  if (const nlohmann::json* j = cfg.get_raw("dense_layers")) {
    if (j->is_array()) {
      dense_layers = 0;
      VDIT_TRY(cfg.get_int_list("dense_layers", &dense_layer_list, 0, 1000000));
    } else {
      dense_layer_list.clear();
      VDIT_TRY(cfg.get_int("dense_layers", &dense_layers, 0, 1000000));
    }
  }
  VDIT_TRY(cfg.get_int("block", &block, 1, 1 << 20));
  if (block != 64 && block != 128) {
    return invalid_argument(strfmt("attention config: key \"block\" = %d: must be 64 or 128", block));
  }
  return Status::ok();
}

// ---- AttentionMethod -------------------------------------------------------------------------------

Status AttentionMethod::forward(const AttentionCall& call, const float* q, const float* k, const float* v, int64_t L,
                                int NH, int HD, float* out) {
  return run(call, QKV{q, k, v, L, NH, HD}, AttentionDst{out, nullptr});
}

Status AttentionMethod::configure(const nlohmann::json& config, const ModelInfo& model) {
  model_ = model;
  ConfigReader cfg(config, name_ + " attention config");
  VDIT_TRY(cfg.status());
  if (const nlohmann::json* m = cfg.get_raw("method")) {
    if (!m->is_string() || m->get<std::string>() != name_) {
      return invalid_argument(strfmt("%s attention config: key \"method\" = %s does not match the method \"%s\"",
                                     name_.c_str(), m->dump().c_str(), name_.c_str()));
    }
  }
  cfg.accept("preset");  // handled by make_attention()
  VDIT_TRY(schedule_.parse(cfg));
  VDIT_TRY(configure_method(cfg));
  return cfg.finish();
}

nlohmann::json AttentionMethod::describe() const {
  nlohmann::json j = {{"method", name_},
                      {"dense_steps", schedule_.dense_steps},
                      {"dense_step_fraction", schedule_.dense_step_fraction},
                      {"block", schedule_.block}};
  if (schedule_.dense_layer_list.empty()) {
    j["dense_layers"] = schedule_.dense_layers;
  } else {
    j["dense_layers"] = schedule_.dense_layer_list;
  }
  const nlohmann::json extra = describe_method();  // a named object: items() must not outlive it
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  return j;
}

Result<std::shared_ptr<const BlockLayout>> AttentionMethod::plan(const AttentionCall&, const QKV&) {
  return unsupported(strfmt("attention method \"%s\" has no block layout planner", name_.c_str()));
}

Result<std::shared_ptr<const BlockLayout>> AttentionMethod::plan_only(const AttentionCall& call, const QKV& in) {
  if (is_dense(call)) return std::shared_ptr<const BlockLayout>();
  if ((!in.q || !in.k || !in.v) && !static_layout()) {
    return invalid_argument(strfmt("attention method \"%s\" plans from the data: give q/k/v inputs", name_.c_str()));
  }
  return plan(call, in);
}

Status AttentionMethod::forward_sparse(const AttentionCall& call, const QKV& in, const AttentionDst& dst,
                                       CallRecord* rec) {
  VDIT_ASSIGN(std::shared_ptr<const BlockLayout> layout, plan(call, in));
  VDIT_TRY(block_sparse_attention_cpu(dst.out, dst.lse, *layout, in.q, in.k, in.v, in.L, in.NH, in.HD, in.scale()));
  rec->layout = std::move(layout);
  return Status::ok();
}

AttentionStats AttentionMethod::call_stats(const AttentionCall& call, int64_t L, int NH, const CallRecord& rec,
                                           double seconds) const {
  AttentionStats st;
  st.method = name_;
  st.layer = call.layer;
  st.step = call.step;
  st.branch = call.branch;
  st.seq_len = L;
  st.num_heads = NH;
  st.dense = rec.dense;
  st.density = rec.density;
  st.seconds = seconds;
  return st;
}

Status AttentionMethod::run(const AttentionCall& call, const QKV& in, const AttentionDst& dst) {
  if (!in.q || !in.k || !in.v || !dst.out) return invalid_argument("attention: null q/k/v/out pointer");
  if (in.L <= 0 || in.NH <= 0 || in.HD <= 0) {
    return invalid_argument(strfmt("attention: bad sizes L=%lld NH=%d HD=%d", static_cast<long long>(in.L), in.NH,
                                   in.HD));
  }
  const int64_t expect = call.grid.tokens() + call.text_len;
  if (in.L != expect) {
    return invalid_argument(strfmt("attention (%s): %lld tokens, but grid %lldx%lldx%lld + %lld text tokens = %lld; "
                                   "pass the grid of the latent video and the text length",
                                   name_.c_str(), static_cast<long long>(in.L), static_cast<long long>(call.grid.f),
                                   static_cast<long long>(call.grid.h), static_cast<long long>(call.grid.w),
                                   static_cast<long long>(call.text_len), static_cast<long long>(expect)));
  }
  const auto t0 = std::chrono::steady_clock::now();
  CallRecord rec;
  if (is_dense(call)) {
    dense_attention_cpu(dst.out, dst.lse, in.q, in.k, in.v, in.L, in.L, in.NH, in.HD, in.scale());
    rec.dense = true;
    rec.density = 1.0;
    VDIT_TRY(after_dense(call, in, dst));
  } else {
    rec.dense = false;
    rec.density = -1.0;
    VDIT_TRY(forward_sparse(call, in, dst, &rec).with_context(strfmt("%s attention, layer %d, step %d", name_.c_str(),
                                                                     call.layer, call.step)));
    if (rec.density < 0) rec.density = rec.layout ? rec.layout->block_density() : 1.0;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (sink_) {
    AttentionStats st = call_stats(call, in.L, in.NH, rec, seconds);
    if (quality_) VDIT_TRY(quality_pass(in, dst.out, rec, &st));
    sink_(st);
  }
  if (record_on_) record_ = std::move(rec);
  return Status::ok();
}

// ---- GPU path ----------------------------------------------------------------------------------------

Status AttentionMethod::dense_device(const DeviceQKV& qkv) {
  if (!sdpa_) {
    auto created = CudnnSdpa::create();
    if (!created.is_ok()) return created.status().with_context(name_ + " attention: dense calls on the GPU");
    sdpa_ = std::shared_ptr<CudnnSdpa>(std::move(created).value());
  }
  return sdpa_->forward(qkv);
}

Result<const DeviceBlockLayout*> AttentionMethod::cached_device_layout(const AttentionCall& call,
                                                                       const DeviceQKV& qkv) {
  const std::string key = device_layout_key(call, qkv);
  if (key.empty()) {
    return unsupported(strfmt("attention method '%s' has no GPU planner yet; use --device cpu or another method",
                              name_.c_str()));
  }
  auto it = device_layouts_.find(key);
  if (it != device_layouts_.end()) return static_cast<const DeviceBlockLayout*>(it->second.get());
  VDIT_ASSIGN(std::shared_ptr<const BlockLayout> host,
              plan_for_device(call, QKV{nullptr, nullptr, nullptr, qkv.L, qkv.NH, qkv.HD}));
  if (!host) return internal_error(name_ + ": plan() returned no layout for a sparse call");
  VDIT_ASSIGN(DeviceBlockLayout dev, DeviceBlockLayout::upload(*host));
  auto shared = std::make_shared<DeviceBlockLayout>(std::move(dev));
  device_layouts_[key] = shared;
  return static_cast<const DeviceBlockLayout*>(shared.get());
}

Status AttentionMethod::forward_sparse_device(const AttentionCall& call, const DeviceQKV& qkv, CallRecord* rec) {
  VDIT_ASSIGN(const DeviceBlockLayout* layout, cached_device_layout(call, qkv));
  VDIT_TRY(block_sparse_attention_cuda(qkv, *layout));
  rec->density = layout->block_density();
  return Status::ok();
}

Status AttentionMethod::forward_device(const AttentionCall& call, const DeviceQKV& qkv) {
  if (!qkv.q || !qkv.k || !qkv.v || !qkv.out) return invalid_argument("attention (GPU): null q/k/v/out pointer");
  if (qkv.L <= 0 || qkv.NH <= 0 || qkv.HD <= 0) {
    return invalid_argument(strfmt("attention (GPU): bad sizes L=%lld NH=%d HD=%d", static_cast<long long>(qkv.L),
                                   qkv.NH, qkv.HD));
  }
  const int64_t expect = call.grid.tokens() + call.text_len;
  if (qkv.L != expect || qkv.keys() != qkv.L) {
    return invalid_argument(strfmt("attention (%s, GPU): %lld query and %lld key tokens, but grid %lldx%lldx%lld + "
                                   "%lld text tokens = %lld; pass the grid of the latent video and the text length",
                                   name_.c_str(), static_cast<long long>(qkv.L), static_cast<long long>(qkv.keys()),
                                   static_cast<long long>(call.grid.f), static_cast<long long>(call.grid.h),
                                   static_cast<long long>(call.grid.w), static_cast<long long>(call.text_len),
                                   static_cast<long long>(expect)));
  }
  if (sink_) VDIT_TRY(device_stream_sync(qkv.stream));
  const auto t0 = std::chrono::steady_clock::now();
  CallRecord rec;
  if (is_dense(call)) {
    VDIT_TRY(dense_device(qkv));
    rec.dense = true;
    rec.density = 1.0;
  } else {
    rec.dense = false;
    rec.density = -1.0;
    VDIT_TRY(forward_sparse_device(call, qkv, &rec)
                 .with_context(strfmt("%s attention (GPU), layer %d, step %d", name_.c_str(), call.layer, call.step)));
  }
  if (sink_) {
    VDIT_TRY(device_stream_sync(qkv.stream));
    AttentionStats st = call_stats(call, qkv.L, qkv.NH, rec,
                                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    sink_(st);
  }
  if (record_on_) record_ = std::move(rec);
  return Status::ok();
}

Status AttentionMethod::quality_pass(const QKV& in, const float* out, const CallRecord& rec, AttentionStats* st) const {
  if (rec.dense) {
    st->recall = 1.0;
    st->rel_error = 0.0;
    return Status::ok();
  }
  const size_t n = static_cast<size_t>(in.L) * in.NH * in.HD, nl = static_cast<size_t>(in.L) * in.NH;
  std::vector<float> od(n), lsed(nl);
  dense_attention_cpu(od.data(), lsed.data(), in.q, in.k, in.v, in.L, in.L, in.NH, in.HD, in.scale());
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(out[i]) - od[i];
    num += d * d;
    den += static_cast<double>(od[i]) * od[i];
  }
  st->rel_error = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  if (rec.layout) {
    std::vector<float> os(n), lses(nl);
    VDIT_TRY(block_sparse_attention_cpu(os.data(), lses.data(), *rec.layout, in.q, in.k, in.v, in.L, in.NH, in.HD,
                                        in.scale()));
    double sum = 0;
    for (size_t i = 0; i < nl; ++i) sum += std::exp(static_cast<double>(lses[i]) - lsed[i]);
    st->recall = sum / static_cast<double>(nl);
  }
  return Status::ok();
}

// ---- registry and factory ----------------------------------------------------------------------------

void MethodRegistry::add(std::string name, std::string description, MethodFactory create) {
  methods_.push_back({std::move(name), std::move(description), std::move(create)});
  std::sort(methods_.begin(), methods_.end(), [](const MethodInfo& a, const MethodInfo& b) { return a.name < b.name; });
}

const MethodInfo* MethodRegistry::find(const std::string& name) const {
  for (const auto& m : methods_)
    if (m.name == name) return &m;
  return nullptr;
}

const MethodRegistry& method_registry() {
  static const MethodRegistry registry = [] {
    MethodRegistry r;
    register_builtin_attention_methods(r);
    return r;
  }();
  return registry;
}

std::string method_names() {
  std::string s;
  for (const auto& m : method_registry().methods()) s += (s.empty() ? "" : ", ") + m.name;
  return s;
}

Result<std::unique_ptr<AttentionMethod>> make_attention(const std::string& method, const nlohmann::json& config,
                                                        const ModelInfo& model) {
  const MethodInfo* info = method_registry().find(method);
  if (!info) {
    return invalid_argument(strfmt("unknown attention method \"%s\"; available: %s", method.c_str(),
                                   method_names().c_str()));
  }
  if (!config.is_null() && !config.is_object()) {
    return invalid_argument(strfmt("%s attention config must be a JSON object, got: %s", method.c_str(),
                                   config.dump().c_str()));
  }
  std::unique_ptr<AttentionMethod> m = info->create();
  m->set_name(info->name);
  std::string preset = "auto";
  if (config.is_object() && config.contains("preset")) {
    const auto& p = config["preset"];
    if (!p.is_string() || (p != "auto" && p != "none")) {
      return invalid_argument(strfmt("%s attention config: key \"preset\" = %s: must be \"auto\" or \"none\"",
                                     method.c_str(), p.dump().c_str()));
    }
    preset = p.get<std::string>();
  }
  nlohmann::json merged = preset == "none" ? nlohmann::json::object() : m->preset(model);
  if (!merged.is_object()) merged = nlohmann::json::object();
  if (config.is_object()) {
    for (auto it = config.begin(); it != config.end(); ++it) merged[it.key()] = it.value();
  }
  VDIT_TRY(m->configure(merged, model));
  return m;
}

}  // namespace vdit::attn
