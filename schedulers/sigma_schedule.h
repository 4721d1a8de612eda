// Flow-matching sigma grids with the timestep shift, as the official Wan2.1 code builds them
// (wan/utils/fm_solvers_unipc.py set_timesteps, fm_solvers.py get_sampling_sigmas; spec: wan.md §5).
// The grid is computed in float64 like numpy, the model time is the truncated int64(σ·1000), and the
// sigmas are then stored as float32 with σ_N = 0 appended. No solver state lives here.
#pragma once

#include <cstdint>
#include <vector>

#include "dit/core/status.h"

namespace vdit {

struct SigmaSchedule {
  std::vector<int64_t> timesteps;  // [N]   model time t_i = int64(σ_i·1000), truncated
  std::vector<float> sigmas;       // [N+1] σ_i as float32, sigmas[N] == 0
  int num_steps() const { return static_cast<int>(timesteps.size()); }
};

// The shift map σ' = s·σ / (1 + (s−1)·σ), in float64 in numpy's operation order.
double shift_sigma(double sigma, double shift);

// UniPC grid (also used by Euler): σ̂ = linspace(σ_max, 0, N+1)[:N] with σ_max = float32(0.999), the last
// training sigma, then shifted. Shift 5, N = 50 gives t = 999, 995, ..., 172, 92.
Result<SigmaSchedule> unipc_sigma_schedule(int num_steps, double shift);

// DPM++ grid (get_sampling_sigmas): σ̂ = linspace(1, 0, N+1)[:N], then shifted; starts at exactly 1 (t = 1000).
Result<SigmaSchedule> dpmpp_sigma_schedule(int num_steps, double shift);

}  // namespace vdit
