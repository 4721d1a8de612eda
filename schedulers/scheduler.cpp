// Scheduler base: argument checks and step bookkeeping shared by every solver, and the factory.
#include "schedulers/scheduler.h"

namespace vdit {

Status Scheduler::set_timesteps(int num_steps, double shift) {
  auto s = make_schedule(num_steps, shift);
  if (!s) return s.status().with_context(strfmt("%s scheduler", name()));
  schedule_ = std::move(s).value();
  reset();
  return Status::ok();
}

void Scheduler::reset() {
  step_index_ = 0;
  run_numel_ = 0;
  reset_state();
}

Status Scheduler::step(float* x, const float* v, int64_t n) {
  if (schedule_.num_steps() == 0) {
    return invalid_argument(strfmt("%s scheduler: step() before set_timesteps(); set the number of steps first", name()));
  }
  if (step_index_ >= schedule_.num_steps()) {
    return invalid_argument(strfmt("%s scheduler: all %d steps are done; call reset() or set_timesteps() to start again",
                                   name(), schedule_.num_steps()));
  }
  if (n <= 0 || x == nullptr || v == nullptr) {
    return invalid_argument(strfmt("%s scheduler: step() needs non-null x and v with n > 0 elements (n = %lld)", name(),
                                   static_cast<long long>(n)));
  }
  if (run_numel_ != 0 && n != run_numel_) {
    return invalid_argument(strfmt("%s scheduler: step %d got %lld elements but this run started with %lld; call "
                                   "reset() before sampling a latent of another size",
                                   name(), step_index_, static_cast<long long>(n), static_cast<long long>(run_numel_)));
  }
  run_numel_ = n;
  Status st = step_impl(x, v, n, step_index_);
  if (!st.is_ok()) return st.with_context(strfmt("%s scheduler step %d", name(), step_index_));
  ++step_index_;
  return Status::ok();
}

Status Scheduler::step(Tensor* x, const Tensor& v) {
  if (x == nullptr || !x->defined() || !v.defined()) {
    return invalid_argument(strfmt("%s scheduler: step() needs a defined latent and velocity", name()));
  }
  if (x->dtype() != DType::f32 || v.dtype() != DType::f32) {
    return invalid_argument(strfmt("%s scheduler: latent and velocity must be f32 (got %s and %s)", name(),
                                   dtype_name(x->dtype()), dtype_name(v.dtype())));
  }
  if (x->numel() != v.numel()) {
    return invalid_argument(strfmt("%s scheduler: latent %s and velocity %s differ in size", name(),
                                   shape_str(x->shape()).c_str(), shape_str(v.shape()).c_str()));
  }
  return step(x->f32(), v.f32(), x->numel());
}

std::vector<std::string> scheduler_names() { return {"unipc", "euler", "dpm++"}; }

Result<std::unique_ptr<Scheduler>> make_scheduler(const std::string& name, TorchRounding rounding) {
  if (name == "unipc") return make_unipc_scheduler(rounding);
  if (name == "euler") return make_euler_scheduler();
  if (name == "dpm++") return make_dpmpp_scheduler();
  return invalid_argument("unknown scheduler '" + name + "'; choose one of: unipc, euler, dpm++");
}

}  // namespace vdit
