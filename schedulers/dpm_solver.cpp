// DPM-Solver++ (2M, midpoint) for flow matching as the official FlowDPMSolverMultistepScheduler in
// Wan2.1's fm_solvers.py runs it with its defaults (dpmsolver++, order 2, lower_order_final,
// final_sigmas_type "zero"). First order at step 0 and at the last step, second order in between.
// Scalars are float32 in the reference's operation order; the infinite λ at σ = 1 (step 0 and the
// second-order history at step 1) and at σ = 0 (last step) are replaced by their limits. No SDE variants.
#include <cmath>

#include "dit/core/parallel.h"
#include "schedulers/flow_math.h"
#include "schedulers/scheduler.h"

namespace vdit {

namespace {

constexpr int kSolverOrder = 2;

class DpmppScheduler final : public Scheduler {
 public:
  const char* name() const override { return "dpm++"; }

 protected:
  Result<SigmaSchedule> make_schedule(int num_steps, double shift) const override {
    return dpmpp_sigma_schedule(num_steps, shift);
  }
  Status step_impl(float* x, const float* v, int64_t n, int i) override;
  void reset_state() override { lower_order_nums_ = 0; }

 private:
  Tensor prev_x0_;  // [n] data prediction of the previous step
  int lower_order_nums_ = 0;
};

Status DpmppScheduler::step_impl(float* x, const float* v, int64_t n, int i) {
  if (!prev_x0_.defined() || prev_x0_.numel() != n) {
    VDIT_ASSIGN(prev_x0_, Tensor::create(DType::f32, {n}));
  }
  const std::vector<float>& sig = sigmas();
  const float sigma_s0 = sig[static_cast<size_t>(i)];
  const float sigma_t = sig[static_cast<size_t>(i) + 1];
  const bool last_step = i == num_steps() - 1;  // final_sigmas_type "zero" forces first order here
  const int order = (lower_order_nums_ < 1 || last_step) ? 1 : kSolverOrder;

  // x_t = (σ_t/σ_s0)·x − c·x0 − (0.5·c)·D1 with c = α_t·(e^{−h} − 1), h = λ_t − λ_s0.
  const bool to_zero = sigma_t == 0.0f;  // λ_t = +∞: e^{−h} = 0, σ_t = 0, α_t = 1, so x_t = x0
  float ratio = 0, c = 0, half_c = 0, inv_r0 = 0;
  if (!to_zero) {
    const float alpha_s0 = flow::alpha(sigma_s0);
    const float lambda_t = flow::lambda(sigma_t);
    float exp_neg_h_m1;  // e^{−h} − 1
    float h = 0;
    if (alpha_s0 == 0.0f) {
      exp_neg_h_m1 = -1.0f;  // σ_s0 = 1: λ_s0 = −∞, h = +∞
    } else {
      h = lambda_t - flow::lambda(sigma_s0);
      exp_neg_h_m1 = flow::exp_f32(-h) - 1.0f;
    }
    ratio = sigma_t / sigma_s0;
    c = flow::alpha(sigma_t) * exp_neg_h_m1;
    half_c = 0.5f * c;
    if (order == 2) {
      const float sigma_s1 = sig[static_cast<size_t>(i - 1)];
      if (flow::alpha(sigma_s1) == 0.0f) {
        inv_r0 = 0.0f;  // σ_s1 = 1: λ_s1 = −∞, so r0 = +∞ and the D1 term vanishes (step 1 is first order)
      } else {
        const float r0 = (flow::lambda(sigma_s0) - flow::lambda(sigma_s1)) / h;
        inv_r0 = 1.0f / r0;
      }
    }
  }

  float* prev = prev_x0_.f32();
  parallel_for_static(n, [&](int64_t e) {
    const float x0 = x[e] - sigma_s0 * v[e];
    float next;
    if (to_zero) {
      next = x0;
    } else {
      next = ratio * x[e] - c * x0;
      if (order == 2) {
        const float d1 = inv_r0 * (x0 - prev[e]);
        next = next - half_c * d1;
      }
    }
    prev[e] = x0;
    x[e] = next;
  });
  if (lower_order_nums_ < kSolverOrder) ++lower_order_nums_;
  return Status::ok();
}

}  // namespace

std::unique_ptr<Scheduler> make_dpmpp_scheduler() { return std::make_unique<DpmppScheduler>(); }

}  // namespace vdit
