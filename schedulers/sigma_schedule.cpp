// Sigma grids: numpy's linspace and the shift map, reproduced operation by operation in float64.
#include "schedulers/sigma_schedule.h"

#include <cmath>

namespace vdit {

namespace {

constexpr int kMaxSteps = 100000;       // far beyond any real use; guards against absurd allocations
constexpr double kNumTrainTimesteps = 1000.0;

Status check_args(int num_steps, double shift) {
  if (num_steps < 1 || num_steps > kMaxSteps) {
    return invalid_argument(strfmt("number of sampling steps must be in [1, %d], got %d", kMaxSteps, num_steps));
  }
  if (!std::isfinite(shift) || shift <= 0) {
    return invalid_argument(strfmt("sample shift must be a positive finite number (Wan uses 3 to 12), got %g", shift));
  }
  return Status::ok();
}

// numpy.linspace(start, stop, num + 1)[:num]: y_i = i·step + start with step = (stop − start)/num.
// (numpy sets the endpoint exactly, but the endpoint is the element dropped here.)
Result<SigmaSchedule> shifted_linspace(double start, int num_steps, double shift) {
  VDIT_TRY(check_args(num_steps, shift));
  SigmaSchedule s;
  s.timesteps.resize(static_cast<size_t>(num_steps));
  s.sigmas.resize(static_cast<size_t>(num_steps) + 1);
  const double step = (0.0 - start) / num_steps;
  for (int i = 0; i < num_steps; ++i) {
    double sigma = shift_sigma(static_cast<double>(i) * step + start, shift);
    s.timesteps[static_cast<size_t>(i)] = static_cast<int64_t>(sigma * kNumTrainTimesteps);  // truncates
    s.sigmas[static_cast<size_t>(i)] = static_cast<float>(sigma);
  }
  s.sigmas[static_cast<size_t>(num_steps)] = 0.0f;
  // The solvers divide by λ differences, so adjacent float32 sigmas must differ, and only the DPM++
  // grid may start at σ = 1 (handled there as a limit).
  for (size_t i = 0; i + 1 < s.sigmas.size(); ++i) {
    if (!(s.sigmas[i] > s.sigmas[i + 1]) || (s.sigmas[i] >= 1.0f && (i > 0 || start < 1.0))) {
      return invalid_argument(strfmt("%d steps with shift %g give a degenerate float32 sigma grid (sigma[%zu] = %.9g, "
                                     "sigma[%zu] = %.9g); use fewer steps or a smaller shift",
                                     num_steps, shift, i, s.sigmas[i], i + 1, s.sigmas[i + 1]));
    }
  }
  return s;
}

}  // namespace

double shift_sigma(double sigma, double shift) { return shift * sigma / (1.0 + (shift - 1.0) * sigma); }

Result<SigmaSchedule> unipc_sigma_schedule(int num_steps, double shift) {
  // FlowUniPCMultistepScheduler.__init__: sigmas = float32(1 − linspace(1, 1/1000, 1000)[::-1]);
  // sigma_max = sigmas[0].item() = float32(1 − 0.001) widened back to float64.
  const double sigma_max = static_cast<double>(static_cast<float>(1.0 - 1.0 / kNumTrainTimesteps));
  return shifted_linspace(sigma_max, num_steps, shift);
}

Result<SigmaSchedule> dpmpp_sigma_schedule(int num_steps, double shift) {
  return shifted_linspace(1.0, num_steps, shift);
}

}  // namespace vdit
