// The denoising loop: model calls per branch, classifier-free guidance, scheduler steps, callbacks.
#include "dit/pipeline/sampling_loop.h"

#include <chrono>
#include <cmath>

#include "dit/core/log.h"
#include "dit/core/parallel.h"

namespace vdit {

namespace {

const char* branch_name(int branch) { return branch == kBranchCond ? "conditional" : "unconditional"; }

Status predict_branch(Tensor* v, VelocityModel* model, int step, int64_t timestep, const Tensor& x, int branch) {
  Status st = model->predict(v, step, timestep, x, branch);
  if (!st.is_ok()) {
    return st.with_context(strfmt("%s velocity at step %d (t = %lld)", branch_name(branch), step,
                                  static_cast<long long>(timestep)));
  }
  if (!v->defined() || v->dtype() != DType::f32 || v->shape() != x.shape()) {
    return invalid_argument(strfmt("the velocity model returned a %s velocity of %s %s at step %d; it must be f32 "
                                   "with the latent's shape %s",
                                   branch_name(branch), v->defined() ? dtype_name(v->dtype()) : "undefined",
                                   shape_str(v->shape()).c_str(), step, shape_str(x.shape()).c_str()));
  }
  return Status::ok();
}

}  // namespace

bool cfg_single_pass(const SamplingOptions& options) {
  return !options.has_negative || options.guidance_scale == 1.0f;
}

void cfg_combine(float* v, const float* cond, const float* uncond, float guidance_scale, int64_t n) {
  // noise_pred_uncond + guide_scale * (noise_pred_cond - noise_pred_uncond), each op rounded to f32
  // (this file is compiled with -ffp-contract=off).
  parallel_for_static(n, [&](int64_t i) { v[i] = uncond[i] + guidance_scale * (cond[i] - uncond[i]); });
}

Status run_sampling_loop(Tensor* x, VelocityModel* model, Scheduler* scheduler, const SamplingOptions& options) {
  if (x == nullptr || model == nullptr || scheduler == nullptr) {
    return invalid_argument("run_sampling_loop needs a latent, a velocity model and a scheduler (got a null pointer)");
  }
  if (!x->defined() || x->dtype() != DType::f32 || x->numel() == 0) {
    return invalid_argument("run_sampling_loop: the initial latent must be a non-empty f32 tensor (got " +
                            std::string(x->defined() ? dtype_name(x->dtype()) : "undefined") + " " +
                            shape_str(x->shape()) + ")");
  }
  const int total = scheduler->num_steps();
  if (total == 0) {
    return invalid_argument(strfmt("run_sampling_loop: the %s scheduler has no steps; call set_timesteps() first",
                                   scheduler->name()));
  }
  if (!std::isfinite(options.guidance_scale)) {
    return invalid_argument(strfmt("guidance scale must be finite, got %g", options.guidance_scale));
  }
  scheduler->reset();
  const bool single_pass = cfg_single_pass(options);
  Tensor cond, uncond, guided;  // [x's shape] each: v_c, v_u, v_u + g·(v_c − v_u)
  auto allocate = [&](Tensor* t) -> Status {
    VDIT_ASSIGN(*t, Tensor::create(DType::f32, x->shape()));
    return Status::ok();
  };

  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < total; ++i) {
    const int64_t timestep = scheduler->timesteps()[static_cast<size_t>(i)];
    // A model may have replaced the tensors it was given; give it fresh ones of the right shape then.
    if (!cond.defined() || cond.shape() != x->shape()) VDIT_TRY(allocate(&cond));
    VDIT_TRY(predict_branch(&cond, model, i, timestep, *x, kBranchCond));
    const Tensor* velocity = &cond;
    if (!single_pass) {
      if (!uncond.defined() || uncond.shape() != x->shape()) VDIT_TRY(allocate(&uncond));
      if (!guided.defined()) VDIT_TRY(allocate(&guided));
      VDIT_TRY(predict_branch(&uncond, model, i, timestep, *x, kBranchUncond));
      cfg_combine(guided.f32(), cond.f32(), uncond.f32(), options.guidance_scale, x->numel());
      velocity = &guided;
    }
    const float sigma = scheduler->sigmas()[static_cast<size_t>(i)];
    VDIT_TRY(scheduler->step(x, *velocity));
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    VDIT_LOG_DEBUG("sampling step %d/%d: t = %lld, sigma = %.6f, %.3f s", i + 1, total,
                   static_cast<long long>(timestep), sigma, elapsed);

    if (options.recorder) {
      StepRecord rec;
      rec.step = i;
      rec.total = total;
      rec.timestep = timestep;
      rec.sigma = sigma;
      rec.cond = &cond;
      rec.uncond = single_pass ? nullptr : &uncond;
      rec.velocity = velocity;
      rec.latent_after = x;
      Status st = options.recorder(rec);
      if (!st.is_ok()) return st.with_context(strfmt("step recorder at step %d", i));
    }
    if (options.progress && !options.progress(i + 1, total, elapsed) && i + 1 < total) {
      return Status(StatusCode::cancelled,
                    strfmt("sampling cancelled by the progress callback after step %d of %d", i + 1, total));
    }
  }
  return Status::ok();
}

}  // namespace vdit
