// `vdit forward attention`: runs one self-attention call of a method (or consecutive denoising steps of one
// layer when the inputs have a leading step axis, keeping the method's state between them) on q/k/v from a
// file, and writes the output, LSE, the method's block mask / permutation / extras and its density.
// `--plan-only` writes the layout without running attention (for shape-only planners, inputs optional).
// The CPU path only: `--device cuda` reports that the CUDA kernels are not built yet.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "attention/block_layout.h"
#include "attention/block_sparse_cpu.h"
#include "attention/config_reader.h"
#include "attention/methods/method.h"
#include "io/safetensors_writer.h"
#include "io/tensor_file.h"
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

struct ForwardAttentionOptions {
  std::string method;
  std::string config;
  std::vector<std::string> settings;
  int dense_steps = -1, dense_layers = -1, block = 0;
  std::vector<int64_t> grid;
  int64_t text = 0;
  bool text_first = false;
  int layer = 0, num_layers = 30, step = 0, steps = 50, branch = 0;
  std::string family = "wan";
  std::string inputs, out;
  std::string device = "cpu";
  bool plan_only = false;
  int heads = 1, head_dim = 128;
  bool quality = false;
  bool element_mask = false;
};

struct Inputs {
  Tensor q, k, v;  // f32 [S, L, NH, HD]
  int64_t S = 1;
  bool stepped = false;  // the file had a step axis
};

Result<Inputs> read_inputs(const std::string& path) {
  VDIT_ASSIGN(auto file, open_tensor_file(path));
  Inputs in;
  Tensor* dst[3] = {&in.q, &in.k, &in.v};
  const char* names[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    if (!file->find(names[i])) {
      return not_found(strfmt("%s has no tensor \"%s\" (expected q, k, v as [L, NH, HD] or [S, L, NH, HD])",
                              path.c_str(), names[i]));
    }
    VDIT_ASSIGN(Tensor t, file->tensor_f32(names[i]));
    if (t.rank() != 3 && t.rank() != 4) {
      return invalid_argument(strfmt("%s: \"%s\" has shape %s; expected [L, NH, HD] or [S, L, NH, HD]", path.c_str(),
                                     names[i], shape_str(t.shape()).c_str()));
    }
    if (t.rank() == 3) {
      VDIT_ASSIGN(t, t.reshape({1, t.dim(0), t.dim(1), t.dim(2)}));
    } else {
      in.stepped = true;
    }
    *dst[i] = std::move(t);
  }
  if (in.q.shape() != in.k.shape() || in.q.shape() != in.v.shape()) {
    return invalid_argument(strfmt("%s: q %s, k %s, v %s must have the same shape", path.c_str(),
                                   shape_str(in.q.shape()).c_str(), shape_str(in.k.shape()).c_str(),
                                   shape_str(in.v.shape()).c_str()));
  }
  in.S = in.q.dim(0);
  return in;
}

Result<nlohmann::json> build_config(const ForwardAttentionOptions& o) {
  nlohmann::json cfg = nlohmann::json::object();
  if (!o.config.empty()) {
    VDIT_ASSIGN(cfg, attn::load_attention_config(o.config));
  }
  for (const auto& s : o.settings) VDIT_TRY(attn::apply_config_override(&cfg, s));
  if (o.dense_steps >= 0) cfg["dense_steps"] = o.dense_steps;
  if (o.dense_layers >= 0) cfg["dense_layers"] = o.dense_layers;
  if (o.block > 0) cfg["block"] = o.block;
  return cfg;
}

// Layout block mask broadcast to [NH, nQ, nK]; all ones (at the method's block size) for dense calls.
std::vector<uint8_t> head_block_mask(const attn::BlockLayout* lay, int NH, int64_t L, int block, int64_t* nb) {
  if (!lay) {
    *nb = (L + block - 1) / block;
    return std::vector<uint8_t>(static_cast<size_t>(NH * *nb * *nb), 1);
  }
  *nb = lay->num_q_blocks();
  std::vector<uint8_t> m = lay->block_mask();
  if (lay->head_shared && NH > 1) {
    std::vector<uint8_t> all;
    all.reserve(m.size() * NH);
    for (int h = 0; h < NH; ++h) all.insert(all.end(), m.begin(), m.end());
    return all;
  }
  return m;
}

Status run(const ForwardAttentionOptions& o) {
  if (o.device == "cuda") {
    return unsupported("vdit forward attention --device cuda: the CUDA attention kernels are not built yet; use "
                       "--device cpu");
  }
  if (o.grid.size() != 3 || o.grid[0] <= 0 || o.grid[1] <= 0 || o.grid[2] <= 0) {
    return invalid_argument("--grid must be three positive numbers F,H,W (the latent video grid)");
  }
  attn::AttentionCall call;
  call.grid = {o.grid[0], o.grid[1], o.grid[2]};
  call.text_len = o.text;
  call.text_first = o.text_first;
  call.layer = o.layer;
  call.num_layers = o.num_layers;
  call.num_steps = o.steps;
  call.branch = o.branch;
  const int64_t L = call.grid.tokens() + call.text_len;

  Inputs in;
  const bool have_inputs = !o.inputs.empty();
  if (have_inputs) {
    VDIT_ASSIGN(in, read_inputs(o.inputs));
    if (in.q.dim(1) != L) {
      return invalid_argument(strfmt("%s holds %lld tokens, but --grid %lld,%lld,%lld and --text %lld give %lld",
                                     o.inputs.c_str(), static_cast<long long>(in.q.dim(1)),
                                     static_cast<long long>(o.grid[0]), static_cast<long long>(o.grid[1]),
                                     static_cast<long long>(o.grid[2]), static_cast<long long>(o.text),
                                     static_cast<long long>(L)));
    }
  } else if (!o.plan_only) {
    return invalid_argument("--inputs is required (only --plan-only may run without inputs)");
  }
  const int NH = have_inputs ? static_cast<int>(in.q.dim(2)) : o.heads;
  const int HD = have_inputs ? static_cast<int>(in.q.dim(3)) : o.head_dim;
  const int64_t S = have_inputs ? in.S : 1;

  VDIT_ASSIGN(nlohmann::json cfg, build_config(o));
  attn::ModelInfo model;
  model.num_layers = o.num_layers;
  model.num_heads = NH;
  model.head_dim = HD;
  model.family = o.family;
  model.grid = call.grid;
  model.num_steps = o.steps;
  VDIT_ASSIGN(std::unique_ptr<attn::AttentionMethod> method, attn::make_attention(o.method, cfg, model));
  method->set_record(true);
  attn::StatsCollector stats;
  method->set_stats_sink(stats.sink());
  method->set_quality_stats(o.quality);

  const size_t per_step = static_cast<size_t>(L) * NH * HD;
  Tensor out, lse;
  if (!o.plan_only) {
    VDIT_ASSIGN(out, Tensor::create(DType::f32, in.q.shape()));
    VDIT_ASSIGN(lse, Tensor::create(DType::f32, {S, NH, L}));
  }
  std::vector<std::shared_ptr<const attn::BlockLayout>> layouts;
  std::vector<std::map<std::string, Tensor>> extras;
  nlohmann::json densities = nlohmann::json::array();
  for (int64_t s = 0; s < S; ++s) {
    call.step = o.step + static_cast<int>(s);
    attn::QKV qkv;
    qkv.L = L;
    qkv.NH = NH;
    qkv.HD = HD;
    if (have_inputs) {
      qkv.q = in.q.f32() + s * per_step;
      qkv.k = in.k.f32() + s * per_step;
      qkv.v = in.v.f32() + s * per_step;
    }
    if (o.plan_only) {
      VDIT_ASSIGN(auto lay, method->plan_only(call, qkv));
      densities.push_back(lay ? lay->block_density() : 1.0);
      layouts.push_back(std::move(lay));
      extras.emplace_back();
      continue;
    }
    VDIT_TRY(method->run(call, qkv, {out.f32() + s * per_step, lse.f32() + s * static_cast<int64_t>(NH) * L}));
    const attn::CallRecord& rec = method->last_call();
    densities.push_back(rec.density);
    layouts.push_back(rec.layout);
    extras.push_back(rec.extras);
  }

  NamedTensors tensors;
  const bool stepped = have_inputs && in.stepped;
  auto lead = [&](Shape shape) {
    if (stepped) shape.insert(shape.begin(), S);
    return shape;
  };
  if (!o.plan_only) {
    VDIT_ASSIGN(Tensor o_out, out.reshape(lead({L, NH, HD})));
    VDIT_ASSIGN(Tensor o_lse, lse.reshape(lead({NH, L})));
    tensors.push_back({"out", o_out});
    tensors.push_back({"lse", o_lse});
  }
  // block_mask [(S,) NH, nQ, nK] when any step used a layout.
  const bool any_layout = std::any_of(layouts.begin(), layouts.end(), [](const auto& l) { return l != nullptr; });
  if (any_layout) {
    int64_t nb = 0;
    std::vector<uint8_t> all;
    for (const auto& lay : layouts) {
      std::vector<uint8_t> m = head_block_mask(lay.get(), NH, L, method->schedule().block, &nb);
      all.insert(all.end(), m.begin(), m.end());
    }
    VDIT_ASSIGN(Tensor bm, Tensor::create(DType::u8, lead({NH, nb, nb})));
    if (static_cast<size_t>(bm.numel()) != all.size()) {
      return internal_error("block masks of different sizes across steps");
    }
    std::copy(all.begin(), all.end(), bm.data<uint8_t>());
    tensors.push_back({"block_mask", bm});
    if (o.element_mask) {
      // [(S,) NH, L, L] in the original token order (dense steps: all ones).
      if (L > 16384) return invalid_argument("--element-mask writes L x L bytes per head: only for L <= 16384");
      VDIT_ASSIGN(Tensor em, Tensor::create(DType::u8, lead({NH, L, L})));
      uint8_t* dst = em.data<uint8_t>();
      for (const auto& lay : layouts) {
        for (int h = 0; h < NH; ++h, dst += L * L) {
          if (!lay) {
            std::fill(dst, dst + L * L, 1);
            continue;
          }
          const std::vector<uint8_t> m = attn::expand_element_mask(*lay, h);
          std::copy(m.begin(), m.end(), dst);
        }
      }
      tensors.push_back({"element_mask", em});
    }
    for (const auto& lay : layouts) {
      if (!lay || !lay->has_perm()) continue;
      VDIT_ASSIGN(Tensor perm, Tensor::create(DType::i32, {NH, L}));
      for (int h = 0; h < NH; ++h) std::copy(lay->perm_of(h), lay->perm_of(h) + L, perm.data<int32_t>() + h * L);
      tensors.push_back({"perm", perm});
      break;
    }
  }
  // Extras: stacked over steps when every step has them with one shape, else one tensor per step.
  std::map<std::string, bool> names;
  for (const auto& e : extras)
    for (const auto& [name, t] : e) names[name] = true;
  for (const auto& [name, unused] : names) {
    bool every = true;
    for (const auto& e : extras) {
      auto it = e.find(name);
      every = every && it != e.end() && it->second.shape() == extras[0].find(name)->second.shape();
    }
    if (every) {
      const Tensor& t0 = extras[0].at(name);
      VDIT_ASSIGN(Tensor st, Tensor::create(t0.dtype(), lead(t0.shape())));
      for (int64_t s = 0; s < S; ++s) {
        const Tensor& t = extras[static_cast<size_t>(s)].at(name);
        std::memcpy(static_cast<uint8_t*>(st.raw()) + s * t.nbytes(), t.raw(), t.nbytes());
      }
      tensors.push_back({name, st});
    } else {
      for (int64_t s = 0; s < S; ++s) {
        auto it = extras[static_cast<size_t>(s)].find(name);
        if (it != extras[static_cast<size_t>(s)].end()) {
          tensors.push_back({strfmt("%s.step%d", name.c_str(), o.step + static_cast<int>(s)), it->second});
        }
      }
    }
  }
  std::map<std::string, std::string> meta;
  meta["density"] = (stepped ? densities : densities[0]).dump();
  meta["method"] = o.method;
  meta["config"] = method->describe().dump();
  meta["grid"] = nlohmann::json(o.grid).dump();
  meta["text_len"] = std::to_string(o.text);
  meta["text_first"] = o.text_first ? "true" : "false";
  meta["layer"] = std::to_string(o.layer);
  meta["step"] = std::to_string(o.step);
  if (any_layout) {
    for (const auto& lay : layouts) {
      if (!lay) continue;
      meta["block"] = std::to_string(lay->block);
      meta["predicate"] = lay->predicate.describe();
      meta["element_density"] = std::to_string(lay->element_density());
      break;
    }
  }
  if (!o.plan_only) meta["stats"] = stats.to_json().dump();
  VDIT_TRY(save_safetensors(o.out, tensors, meta));
  std::printf("%s: %s, %lld step(s), L=%lld, NH=%d, HD=%d, density %s -> %s\n", o.method.c_str(),
              o.plan_only ? "plan only" : "attention", static_cast<long long>(S), static_cast<long long>(L), NH, HD,
              meta["density"].c_str(), o.out.c_str());
  return Status::ok();
}

std::function<int()> setup_forward_attention(CLI::App& app) {
  auto o = std::make_shared<ForwardAttentionOptions>();
  app.add_option("--method", o->method, "attention method: " + attn::method_names())->required();
  app.add_option("--attention-config", o->config, "method config: a JSON file or inline JSON (attention/README.md)");
  app.add_option("--set", o->settings, "override one config key: KEY=VALUE (repeatable)");
  app.add_option("--dense-steps", o->dense_steps, "dense warm-up steps (overrides the config)");
  app.add_option("--dense-layers", o->dense_layers, "dense first layers (overrides the config)");
  app.add_option("--block", o->block, "block size 64 or 128 (overrides the config)");
  app.add_option("--grid", o->grid, "latent video grid F,H,W")->required()->delimiter(',')->expected(3);
  app.add_option("--text", o->text, "text tokens in the self-attention sequence (after the video)");
  app.add_flag("--text-first", o->text_first, "text tokens come before the video");
  app.add_option("--layer", o->layer, "layer index of the call");
  app.add_option("--num-layers", o->num_layers, "layers of the model (presets, schedules)");
  app.add_option("--step", o->step, "denoising step of the (first) call");
  app.add_option("--steps", o->steps, "denoising steps of the whole run (schedules, presets)");
  app.add_option("--branch", o->branch, "CFG branch (0 conditional, 1 unconditional)");
  app.add_option("--family", o->family, "model family for presets and Radial's sink rule")
      ->check(CLI::IsMember({"wan", "hunyuan"}));
  app.add_option("--inputs", o->inputs, "safetensors with q, k, v [L, NH, HD] or [S, L, NH, HD] (any float dtype)");
  app.add_option("--out", o->out, "output safetensors")->required();
  app.add_option("--device", o->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_flag("--plan-only", o->plan_only, "write the layout (block_mask, perm, density) without running attention");
  app.add_option("--heads", o->heads, "heads for --plan-only without inputs");
  app.add_option("--head-dim", o->head_dim, "head dim for --plan-only without inputs");
  app.add_flag("--element-mask", o->element_mask, "also write element_mask [(S,) NH, L, L] (original order; small L)");
  app.add_flag("--quality", o->quality, "also measure recall and relative error against dense (metadata \"stats\")");
  return [o] {
    Status s = run(*o);
    return s.is_ok() ? 0 : report_error(s.message());
  };
}

}  // namespace

VDIT_REGISTER_COMMAND("forward attention", "Run one attention call (or steps of one layer) of a method on q/k/v",
                      31, setup_forward_attention);

}  // namespace vdit::cli
