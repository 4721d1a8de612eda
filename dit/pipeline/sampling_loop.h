// The denoising loop, generic over the model: at each scheduler step ask a VelocityModel for the
// conditional (and, with guidance, unconditional) velocity, combine them by classifier-free guidance
// v = v_u + g·(v_c − v_u), and let the Scheduler advance the latent. Progress/cancel and per-step
// recording go through callbacks. It does not make the initial noise, encode text or decode video.
#pragma once

#include <cstdint>
#include <functional>

#include "dit/core/status.h"
#include "dit/core/tensor.h"
#include "schedulers/scheduler.h"

namespace vdit {

constexpr int kBranchCond = 0;    // prompt context
constexpr int kBranchUncond = 1;  // negative-prompt context

// A velocity predictor (the DiT with its text contexts, or a synthetic field in tests).
class VelocityModel {
 public:
  virtual ~VelocityModel() = default;
  // Writes the velocity at latent `x` and integer model time `timestep` (scheduler step `step`) for
  // `branch` (kBranchCond / kBranchUncond) into *v, which arrives as an f32 tensor of x's shape. The
  // model may also replace *v by another f32 tensor of that shape.
  virtual Status predict(Tensor* v, int step, int64_t timestep, const Tensor& x, int branch) = 0;
};

// What one step saw, for tests and debugging; the pointers are valid only during the recorder call.
struct StepRecord {
  int step = 0;             // 0-based
  int total = 0;            // number of steps
  int64_t timestep = 0;     // model time t_i
  float sigma = 0;          // σ_i
  const Tensor* cond = nullptr;          // [x's shape] conditional velocity
  const Tensor* uncond = nullptr;        // [x's shape] unconditional velocity, nullptr in single-pass mode
  const Tensor* velocity = nullptr;      // [x's shape] the guided velocity given to the scheduler
  const Tensor* latent_after = nullptr;  // [x's shape] x_{i+1}
};

// Called after each completed step with the count of steps done (1..total); false cancels the run.
using ProgressCallback = std::function<bool(int steps_done, int total, double elapsed_s)>;
// Called after each step; an error stops the loop and is returned.
using StepRecorder = std::function<Status(const StepRecord& record)>;

struct SamplingOptions {
  float guidance_scale = 5.0f;  // g; 1 means no guidance (single pass)
  bool has_negative = true;     // false: no unconditional branch (single pass)
  ProgressCallback progress;    // optional
  StepRecorder recorder;        // optional
};

// True when only the conditional branch runs: g == 1 or no negative context.
bool cfg_single_pass(const SamplingOptions& options);

// v = v_u + g·(v_c − v_u) element-wise in float32, in the reference's operation order; threaded.
void cfg_combine(float* v, const float* cond, const float* uncond, float guidance_scale, int64_t n);

// Runs all steps of `scheduler` (set_timesteps must have been called; the run starts with reset()).
// On entry *x is the initial latent (noise at σ_0), f32; on success it is x_N. If a callback cancels
// (StatusCode::cancelled) or anything fails, *x holds the latent after the last completed step.
Status run_sampling_loop(Tensor* x, VelocityModel* model, Scheduler* scheduler, const SamplingOptions& options);

}  // namespace vdit
