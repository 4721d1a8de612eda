// The sampler interface: a flow-matching ODE solver that walks a latent from σ_0 (noise) to σ_N = 0
// given the model's velocity v at each step. Host-only, element-wise math on f32 arrays; the solvers
// mirror the official Wan2.1 float32 arithmetic (wan.md §5). It does not run the model or apply
// classifier-free guidance (dit/pipeline/sampling_loop.h does), and it adds no noise.
//
//   VDIT_ASSIGN(auto sched, make_scheduler("unipc"));
//   VDIT_TRY(sched->set_timesteps(50, 5.0));
//   for (int i = 0; i < sched->num_steps(); ++i) {  // model time sched->timesteps()[i]
//     VDIT_TRY(sched->step(x, v, n));              // x ← x_{i+1}, in place
//   }
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dit/core/status.h"
#include "dit/core/tensor.h"
#include "schedulers/sigma_schedule.h"

namespace vdit {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  virtual const char* name() const = 0;  // "unipc", "euler", "dpm++"

  // Builds this solver's grid for `num_steps` steps and `shift` (Wan: 50 steps, shift 5) and resets.
  Status set_timesteps(int num_steps, double shift);
  const std::vector<int64_t>& timesteps() const { return schedule_.timesteps; }  // [N] model time
  const std::vector<float>& sigmas() const { return schedule_.sigmas; }          // [N+1], last is 0
  int num_steps() const { return schedule_.num_steps(); }
  int step_index() const { return step_index_; }  // steps taken since set_timesteps / reset

  // One solver step: x (n f32 elements) goes in place from sigmas()[step_index()] to the next sigma,
  // given the velocity `v` predicted at that x. Every step of a run must use the same n. Threaded.
  Status step(float* x, const float* v, int64_t n);
  // Same, on tensors: both f32 with the same number of elements.
  Status step(Tensor* x, const Tensor& v);

  // Forgets the solver history; the next step is step 0 of the same grid.
  void reset();

 protected:
  virtual Result<SigmaSchedule> make_schedule(int num_steps, double shift) const = 0;
  // Step `i` (0 <= i < N) on valid arguments; `n` is the same as at every earlier step of the run.
  virtual Status step_impl(float* x, const float* v, int64_t n, int i) = 0;
  virtual void reset_state() {}

 private:
  SigmaSchedule schedule_;
  int step_index_ = 0;
  int64_t run_numel_ = 0;  // n of the current run, 0 before its first step
};

// Which run of the official PyTorch solver to reproduce to the last bit. They differ only inside
// UniPC: on CUDA, D1 = Δx0 / r_k divides a device tensor by a CPU scalar, which PyTorch turns into a
// multiply by its reciprocal, and cuSOLVER's 2×2 solve divides where MKL multiplies by reciprocals.
// The difference is ~1e-7; `cuda` reproduces the official GPU pipeline, `cpu` a run on CPU tensors.
enum class TorchRounding { cuda, cpu };

// The solvers by name: "unipc" (official default: UniPC bh2, order 2, with corrector), "euler"
// (flow-matching Euler), "dpm++" (DPM-Solver++ 2M midpoint, official fm_solvers.py).
Result<std::unique_ptr<Scheduler>> make_scheduler(const std::string& name,
                                                  TorchRounding rounding = TorchRounding::cuda);
std::vector<std::string> scheduler_names();

std::unique_ptr<Scheduler> make_unipc_scheduler(TorchRounding rounding = TorchRounding::cuda);
std::unique_ptr<Scheduler> make_euler_scheduler();
std::unique_ptr<Scheduler> make_dpmpp_scheduler();

}  // namespace vdit
