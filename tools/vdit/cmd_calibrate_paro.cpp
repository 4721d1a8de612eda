// `vdit calibrate paro`: builds a PARO plan (per-head axis orders + block masks per step group, layer and
// head; attention/paro_plan.h) from recorded dense attention inputs of a calibration run. The inputs are a
// safetensors file in the `vdit forward attention` layout: "q"/"k" [L, NH, HD] or [S, L, NH, HD] for one
// layer, or "layer<l>.q"/"layer<l>.k" for layers 0.. ; optional "steps" int [S] gives each entry's step.
// Or, with --model/--prompt, a calibration run of the model itself: the text-to-video pipeline runs twice
// (pass 1 picks each head's axis order, pass 2 sums block masses) with exact dense attention whose q/k go to
// the calibrator, and stops before the VAE.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "attention/methods/paro_calibrate.h"
#include "attention/methods/paro_orders.h"
#include "dit/pipeline/model_files.h"
#include "dit/pipeline/text_to_video.h"
#include "io/tensor_file.h"
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

struct CalibrateParoOptions {
  std::string inputs, out;
  std::vector<int64_t> grid;
  int64_t text = 0;
  bool text_first = false;
  double density = 0;
  int groups = 1, steps = 0, block = 64, first_step = 0;
  std::string model;                 // model-driven run: model folder ("" with prompts = built-in model)
  std::vector<std::string> prompts;  // calibration prompts (one pipeline run each, per pass)
  int64_t seed = 0;
};

// Names of the q/k tensors per layer, the entry count S and the step of each entry.
struct InputLayout {
  std::vector<std::pair<std::string, std::string>> layers;  // (q name, k name)
  int64_t S = 1;
  bool stepped = false;
  std::vector<int> steps;  // [S]
  int NH = 0, HD = 0;
};

Result<InputLayout> inspect_inputs(const TensorFile& f, const CalibrateParoOptions& o, int64_t L) {
  InputLayout in;
  if (f.find("q") && f.find("k")) {
    in.layers.push_back({"q", "k"});
  } else {
    for (int l = 0; f.find(strfmt("layer%d.q", l)) && f.find(strfmt("layer%d.k", l)); ++l) {
      in.layers.push_back({strfmt("layer%d.q", l), strfmt("layer%d.k", l)});
    }
  }
  if (in.layers.empty()) {
    return not_found(o.inputs + ": no \"q\"/\"k\" or \"layer0.q\"/\"layer0.k\" tensors (dense attention inputs "
                                "[L, NH, HD] or [S, L, NH, HD] per layer)");
  }
  for (size_t l = 0; l < in.layers.size(); ++l) {
    for (const std::string& name : {in.layers[l].first, in.layers[l].second}) {
      const TensorEntry* e = f.find(name);
      Shape s = e->shape;
      const bool stepped = s.size() == 4;
      if (s.size() == 3) s.insert(s.begin(), 1);
      if (s.size() != 4 || s[1] != L) {
        return invalid_argument(strfmt("%s: \"%s\" has shape %s; expected [L, NH, HD] or [S, L, NH, HD] with L = %lld "
                                       "(--grid and --text)",
                                       o.inputs.c_str(), name.c_str(), shape_str(e->shape).c_str(),
                                       static_cast<long long>(L)));
      }
      if (l == 0 && name == in.layers[0].first) {
        in.S = s[0];
        in.stepped = stepped;
        in.NH = static_cast<int>(s[2]);
        in.HD = static_cast<int>(s[3]);
      } else if (s[0] != in.S || s[2] != in.NH || s[3] != in.HD) {
        return invalid_argument(strfmt("%s: \"%s\" has shape %s, unlike \"%s\"", o.inputs.c_str(), name.c_str(),
                                       shape_str(e->shape).c_str(), in.layers[0].first.c_str()));
      }
    }
  }
  if (f.find("steps")) {
    VDIT_ASSIGN(Tensor t, f.tensor_f32("steps"));
    if (t.numel() != in.S) {
      return invalid_argument(strfmt("%s: \"steps\" has %lld entries for %lld recorded steps", o.inputs.c_str(),
                                     static_cast<long long>(t.numel()), static_cast<long long>(in.S)));
    }
    for (int64_t s = 0; s < in.S; ++s) in.steps.push_back(static_cast<int>(t.f32()[s]));
  } else {
    for (int64_t s = 0; s < in.S; ++s) in.steps.push_back(o.first_step + static_cast<int>(s));
  }
  return in;
}

// Calibration through the model: every prompt is generated (dense, no VAE) once per pass.
Status run_model(const CalibrateParoOptions& o) {
  if (o.prompts.empty()) return invalid_argument("--model needs at least one --prompt to calibrate on");
  pipeline::GenerationInputs in;
  in.model.dir = o.model.empty() ? pipeline::default_model_dir() : o.model;
  in.prompt = o.prompts.front();
  if (o.steps > 0) in.settings.steps = o.steps;
  in.seed = o.seed;
  in.skip_decode = true;
  VDIT_ASSIGN(pipeline::GenerationPlan plan, pipeline::plan_generation(in));
  const model::WanDitConfig& dc = plan.dit_config;
  const pipeline::GenerationSettings& s = plan.settings;
  attn::ParoCalibrationOptions c;
  c.grid = {s.latent_frames() / dc.patch_size[0], s.latent_height() / dc.patch_size[1],
            s.latent_width() / dc.patch_size[2]};
  c.layers = static_cast<int>(dc.num_layers);
  c.heads = static_cast<int>(dc.num_heads);
  c.block = o.block;
  c.groups = o.groups;
  c.density = o.density;
  c.num_steps = s.steps;
  VDIT_ASSIGN(std::unique_ptr<attn::ParoCalibrator> cal, attn::ParoCalibrator::create(c));
  attn::ParoCalibrationAttention attention(cal.get());
  auto pass = [&]() -> Status {
    for (const std::string& prompt : o.prompts) {
      pipeline::GenerationPlan p = plan;
      p.inputs.prompt = prompt;
      p.inputs.attention_override = &attention;
      VDIT_ASSIGN(auto report, pipeline::run_generation(p, nullptr, {}));
      (void)report;
    }
    return Status::ok();
  };
  VDIT_TRY(pass().with_context("paro calibration, pass 1"));
  VDIT_TRY(cal->choose_orders());
  VDIT_TRY(pass().with_context("paro calibration, pass 2"));
  VDIT_ASSIGN(attn::ParoPlan paro, cal->finish());
  paro.metadata["calibration_model"] = in.model.dir;
  paro.metadata["calibration_prompts"] = std::to_string(o.prompts.size());
  VDIT_TRY(attn::save_paro_plan(o.out, paro));
  std::printf("paro plan: %d layer(s) x %d head(s), %d group(s) over %d steps, grid %lldx%lldx%lld, density %s "
              "(target %g), from %zu prompt(s) -> %s\n",
              paro.layers, paro.heads, paro.groups, paro.steps, static_cast<long long>(c.grid.f),
              static_cast<long long>(c.grid.h), static_cast<long long>(c.grid.w),
              paro.metadata["achieved_density"].c_str(), o.density, o.prompts.size(), o.out.c_str());
  return Status::ok();
}

Status run(const CalibrateParoOptions& o) {
  if (!o.model.empty() || !o.prompts.empty()) {
    if (!o.inputs.empty()) return invalid_argument("give either --inputs (recorded q/k) or --model/--prompt, not both");
    return run_model(o);
  }
  if (o.inputs.empty()) return invalid_argument("give --inputs (recorded q/k) or --prompt (a calibration run of --model)");
  if (o.grid.size() != 3 || o.grid[0] <= 0 || o.grid[1] <= 0 || o.grid[2] <= 0) {
    return invalid_argument("--grid must be three positive numbers F,H,W (the latent video grid)");
  }
  attn::ParoCalibrationOptions c;
  c.grid = {o.grid[0], o.grid[1], o.grid[2]};
  c.text_len = o.text;
  c.text_first = o.text_first;
  c.block = o.block;
  c.groups = o.groups;
  c.density = o.density;
  const int64_t L = c.grid.tokens() + c.text_len;
  VDIT_ASSIGN(auto file, open_tensor_file(o.inputs));
  VDIT_ASSIGN(InputLayout in, inspect_inputs(*file, o, L));
  c.layers = static_cast<int>(in.layers.size());
  c.heads = in.NH;
  int max_step = 0;
  for (int s : in.steps) max_step = std::max(max_step, s);
  c.num_steps = o.steps > 0 ? o.steps : max_step + 1;
  const size_t per_step = static_cast<size_t>(L) * in.NH * in.HD;
  auto replay = [&](const attn::ParoCallSink& sink) -> Status {
    for (int l = 0; l < c.layers; ++l) {
      VDIT_ASSIGN(Tensor q, file->tensor_f32(in.layers[static_cast<size_t>(l)].first));
      VDIT_ASSIGN(Tensor k, file->tensor_f32(in.layers[static_cast<size_t>(l)].second));
      for (int64_t s = 0; s < in.S; ++s) {
        attn::ParoCall call;
        call.step = in.steps[static_cast<size_t>(s)];
        call.layer = l;
        call.q = q.f32() + s * per_step;
        call.k = k.f32() + s * per_step;
        call.L = L;
        call.NH = in.NH;
        call.HD = in.HD;
        VDIT_TRY(sink(call));
      }
    }
    return Status::ok();
  };
  VDIT_ASSIGN(attn::ParoPlan plan, attn::calibrate_paro_plan(c, replay));
  plan.metadata["calibration_inputs"] = o.inputs;
  VDIT_TRY(attn::save_paro_plan(o.out, plan));
  std::string orders;
  for (int32_t v : plan.order) orders += std::string(orders.empty() ? "" : " ") + attn::paro_order_name(v);
  std::printf("paro plan: %d layer(s) x %d head(s), %d group(s) over %d steps, %lld x %lld blocks of %d, density %s "
              "(target %g), orders: %s -> %s\n",
              plan.layers, plan.heads, plan.groups, plan.steps, static_cast<long long>(plan.nq),
              static_cast<long long>(plan.nq), plan.block, plan.metadata["achieved_density"].c_str(), o.density,
              orders.c_str(), o.out.c_str());
  return Status::ok();
}

std::function<int()> setup_calibrate_paro(CLI::App& app) {
  auto o = std::make_shared<CalibrateParoOptions>();
  app.add_option("--inputs", o->inputs,
                 "safetensors of recorded dense q/k: q,k [L,NH,HD] or [S,L,NH,HD] (one layer) or layer<l>.q/.k");
  app.add_option("--model", o->model, "calibrate by running this model folder (default with --prompt: the built-in model)");
  app.add_option("--prompt", o->prompts, "calibration prompt (repeatable); runs the model instead of --inputs");
  app.add_option("--seed", o->seed, "noise seed of the calibration runs");
  app.add_option("--out", o->out, "plan file to write (safetensors)")->required();
  app.add_option("--density", o->density, "target fraction of kept blocks per mask, in (0, 1]")->required();
  app.add_option("--grid", o->grid, "latent video grid F,H,W (with --inputs)")->delimiter(',')->expected(3);
  app.add_option("--text", o->text, "text tokens in the self-attention sequence");
  app.add_flag("--text-first", o->text_first, "text tokens come before the video");
  app.add_option("--groups", o->groups, "step groups (one mask per group, layer and head)");
  app.add_option("--steps", o->steps, "denoising steps of the run (default: last recorded step + 1)");
  app.add_option("--first-step", o->first_step, "step of the first recorded entry when the file has no \"steps\"");
  app.add_option("--block", o->block, "mask block size, 64 or 128");
  return [o] {
    Status s = run(*o);
    return s.is_ok() ? 0 : report_error(s.message());
  };
}

}  // namespace

VDIT_REGISTER_COMMAND("calibrate paro", "Build a PARO plan (head orders, block masks) from a calibration run or recorded q/k", 51,
                      setup_calibrate_paro);

}  // namespace vdit::cli
