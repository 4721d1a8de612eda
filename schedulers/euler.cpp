// Flow-matching Euler: x_{i+1} = x_i + (σ_{i+1} − σ_i)·v_i, in float32 as diffusers'
// FlowMatchEulerDiscreteScheduler.step computes it. It is not an official Wan2.1 T2V option, so it runs
// on the official UniPC sigma grid (wan.md §5) rather than diffusers' own grid. No stochastic variant.
#include "dit/core/parallel.h"
#include "schedulers/scheduler.h"

namespace vdit {

namespace {

class EulerScheduler final : public Scheduler {
 public:
  const char* name() const override { return "euler"; }

 protected:
  Result<SigmaSchedule> make_schedule(int num_steps, double shift) const override {
    return unipc_sigma_schedule(num_steps, shift);
  }
  Status step_impl(float* x, const float* v, int64_t n, int i) override {
    const float dt = sigmas()[static_cast<size_t>(i) + 1] - sigmas()[static_cast<size_t>(i)];
    parallel_for_static(n, [&](int64_t e) { x[e] = x[e] + dt * v[e]; });
    return Status::ok();
  }
};

}  // namespace

std::unique_ptr<Scheduler> make_euler_scheduler() { return std::make_unique<EulerScheduler>(); }

}  // namespace vdit
