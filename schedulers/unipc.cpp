// UniPC for flow matching exactly as the official FlowUniPCMultistepScheduler runs it in Wan2.1
// (bh2, solver_order 2, predict_x0, lower_order_final, corrector on every step after the first;
// wan.md §5). Scalars are float32 in the reference's operation order, with PyTorch's CUDA or CPU
// rounding (TorchRounding); the last step (σ_N = 0, where λ = +∞) is special-cased to its limit
// x_N = x0_{N−1}. Thresholding, bh1, solver_p and disable_corrector are not supported.
#include <algorithm>
#include <cmath>
#include <utility>

#include "dit/core/parallel.h"
#include "schedulers/flow_math.h"
#include "schedulers/scheduler.h"

namespace vdit {

namespace {

constexpr int kSolverOrder = 2;

// ρ = solve([[1, 1], [r, 1]], [b1, b2]) in float32 as torch.linalg.solve did it in the reference runs:
// LU with partial pivoting (rows swap only when |r| > 1) and the elimination update fused into one FMA;
// on the CPU (MKL) the back substitution multiplies by reciprocal pivots, on CUDA it divides.
void solve_rho_2x2(float r, float b1, float b2, bool reciprocal, float* rho0, float* rho1) {
  auto over = [reciprocal](float a, float d) { return reciprocal ? a * (1.0f / d) : a / d; };
  if (std::fabs(r) > 1.0f) {  // pivot row is [r, 1]
    const float l = 1.0f / r;       // multiplier of row [1, 1]
    const float u11 = 1.0f - l;     // 1 − l·1
    const float y1 = std::fma(-l, b2, b1);
    *rho1 = over(y1, u11);
    *rho0 = over(b2 - *rho1, r);    // (b2 − 1·ρ1) / r
  } else {  // pivot row is [1, 1]
    const float l = r;
    const float u11 = 1.0f - l;
    const float y1 = std::fma(-l, b1, b2);
    *rho1 = over(y1, u11);
    *rho0 = b1 - *rho1;             // (b1 − 1·ρ1) / 1
  }
}

// Scalars of one UniP (predictor) or UniC (corrector) update from σ_s0 to σ_t:
//   x_t = (σ_t/σ_s0)·x − (α_t·φ1)·m0 − (α_t·B)·(correction terms)
struct UpdateCoeffs {
  int order = 1;
  float sigma_ratio = 0;  // σ_t / σ_s0
  float alpha_phi = 0;    // α_t · expm1(−h)
  float alpha_b = 0;      // α_t · B(h), bh2: B = expm1(−h)
  float rk = 0;           // (λ_s1 − λ_s0) / h, order 2 only
  float h_phi1 = 0, hh = 0, b_h = 0;
};

// sigma_s1 is the sigma one further back (order 2 only).
UpdateCoeffs update_coeffs(float sigma_t, float sigma_s0, float sigma_s1, int order) {
  UpdateCoeffs c;
  c.order = order;
  const float lambda_t = flow::lambda(sigma_t);
  const float lambda_s0 = flow::lambda(sigma_s0);
  const float h = lambda_t - lambda_s0;
  if (order == 2) c.rk = (flow::lambda(sigma_s1) - lambda_s0) / h;
  c.hh = -h;
  c.h_phi1 = flow::expm1_f32(c.hh);
  c.b_h = flow::expm1_f32(c.hh);
  c.sigma_ratio = sigma_t / sigma_s0;
  c.alpha_phi = flow::alpha(sigma_t) * c.h_phi1;
  c.alpha_b = flow::alpha(sigma_t) * c.b_h;
  return c;
}

class UniPCScheduler final : public Scheduler {
 public:
  explicit UniPCScheduler(TorchRounding rounding) : cuda_(rounding == TorchRounding::cuda) {}
  const char* name() const override { return "unipc"; }

 protected:
  Result<SigmaSchedule> make_schedule(int num_steps, double shift) const override {
    return unipc_sigma_schedule(num_steps, shift);
  }
  Status step_impl(float* x, const float* v, int64_t n, int i) override;
  void reset_state() override {
    lower_order_nums_ = 0;
    prev_order_ = 0;
  }

 private:
  Status ensure_buffers(int64_t n);

  const bool cuda_;  // TorchRounding::cuda: D1 = Δx0·(1/r_k), dividing 2×2 solve
  Tensor m0_, m1_;  // [n] data predictions x0_{i−1}, x0_{i−2}
  Tensor last_;     // [n] the (corrected) sample the previous predictor started from
  int lower_order_nums_ = 0;
  int prev_order_ = 0;  // the predictor order of the previous step = this step's corrector order
};

Status UniPCScheduler::ensure_buffers(int64_t n) {
  if (m0_.defined() && m0_.numel() == n) return Status::ok();
  VDIT_ASSIGN(m0_, Tensor::create(DType::f32, {n}));
  VDIT_ASSIGN(m1_, Tensor::create(DType::f32, {n}));
  VDIT_ASSIGN(last_, Tensor::create(DType::f32, {n}));
  return Status::ok();
}

Status UniPCScheduler::step_impl(float* x, const float* v, int64_t n, int i) {
  VDIT_TRY(ensure_buffers(n));
  const std::vector<float>& sig = sigmas();
  const int total = num_steps();
  const float sigma_i = sig[static_cast<size_t>(i)];

  // Corrector (UniC) of this step's sample, with the order the previous predictor used.
  const bool use_corrector = i > 0;
  UpdateCoeffs corr;
  float rho0 = 0, rho_last = 0.5f;  // order 1: ρ = [0.5]
  if (use_corrector) {
    const int p = prev_order_;
    corr = update_coeffs(sigma_i, sig[static_cast<size_t>(i - 1)], p == 2 ? sig[static_cast<size_t>(i - 2)] : 0.f, p);
    if (p == 2) {
      // b_k = h_phi_k · k! / B(h) with h_phi_1 = φ1/hh − 1, h_phi_2 = h_phi_1/hh − 1/2.
      float h_phi_k = corr.h_phi1 / corr.hh - 1.0f;
      const float b1 = h_phi_k * 1.0f / corr.b_h;
      h_phi_k = h_phi_k / corr.hh - 0.5f;
      const float b2 = h_phi_k * 2.0f / corr.b_h;
      solve_rho_2x2(corr.rk, b1, b2, /*reciprocal=*/!cuda_, &rho0, &rho_last);
    }
  }

  // Predictor (UniP) order: lower_order_final and warm-up.
  int order = std::min(kSolverOrder, total - i);
  order = std::min(order, lower_order_nums_ + 1);
  const float sigma_next = sig[static_cast<size_t>(i) + 1];
  // σ_next = 0 only at the last step, where the order is 1 and the update tends to x0 (φ1 → −1).
  const bool to_zero = sigma_next == 0.0f;
  UpdateCoeffs pred;
  if (!to_zero) pred = update_coeffs(sigma_next, sigma_i, order == 2 ? sig[static_cast<size_t>(i - 1)] : 0.f, order);

  // D1 = Δx0 / r_k. On CUDA, dividing a tensor by a CPU scalar multiplies by its float32 reciprocal.
  const bool d1_by_reciprocal = cuda_;
  const float corr_inv_rk = corr.order == 2 ? 1.0f / corr.rk : 0.0f;
  const float pred_inv_rk = pred.order == 2 ? 1.0f / pred.rk : 0.0f;
  float* m0 = m0_.f32();      // x0_{i−1}
  float* m1 = m1_.f32();      // x0_{i−2}; overwritten with x0_i
  float* last = last_.f32();  // x_{i−1} (corrected) on entry, x_i (corrected) on exit
  const int corr_order = use_corrector ? corr.order : 0;
  parallel_for_static(n, [&](int64_t e) {
    float xe = x[e];
    const float x0 = xe - sigma_i * v[e];  // data prediction from the uncorrected sample
    if (corr_order != 0) {
      const float base = corr.sigma_ratio * last[e] - corr.alpha_phi * m0[e];
      const float d1_t = x0 - m0[e];
      float res;
      if (corr_order == 2) {
        const float diff = m1[e] - m0[e];
        const float d1 = d1_by_reciprocal ? diff * corr_inv_rk : diff / corr.rk;
        res = rho0 * d1 + rho_last * d1_t;
      } else {
        res = rho_last * d1_t;
      }
      xe = base - corr.alpha_b * res;
    }
    last[e] = xe;
    float next;
    if (to_zero) {
      next = x0;
    } else {
      next = pred.sigma_ratio * xe - pred.alpha_phi * x0;
      if (pred.order == 2) {
        const float diff = m0[e] - x0;
        const float d1 = d1_by_reciprocal ? diff * pred_inv_rk : diff / pred.rk;
        next = next - pred.alpha_b * (0.5f * d1);
      }
    }
    m1[e] = x0;
    x[e] = next;
  });
  std::swap(m0_, m1_);  // m0 = x0_i, m1 = x0_{i−1}
  prev_order_ = order;
  if (lower_order_nums_ < kSolverOrder) ++lower_order_nums_;
  return Status::ok();
}

}  // namespace

std::unique_ptr<Scheduler> make_unipc_scheduler(TorchRounding rounding) {
  return std::make_unique<UniPCScheduler>(rounding);
}

}  // namespace vdit
