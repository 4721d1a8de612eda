// The generic denoising loop: a synthetic velocity model against the recorded official loops, a replay
// of the recorded end-to-end run's cond/uncond velocities through CFG 5 + UniPC, single-pass rules,
// cancellation through the progress callback, and error propagation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "dit/pipeline/sampling_loop.h"
#include "tests/schedulers/sched_golden.h"

using namespace vdit;

namespace {

// The golden's synthetic field v = 0.8x − 0.3·tanh(x) + 0.001·t, in float32 as torch evaluates it
// with a Python-int t (0.001·t is a float64 product rounded to float32).
class SyntheticModel : public VelocityModel {
 public:
  int calls[2] = {0, 0};
  Status predict(Tensor* v, int step, int64_t timestep, const Tensor& x, int branch) override {
    ++calls[branch];
    const float bias = static_cast<float>(0.001 * static_cast<double>(timestep));
    const float* xp = x.f32();
    float* vp = v->f32();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float a = 0.8f * xp[i];
      const float b = 0.3f * std::tanh(xp[i]);
      vp[i] = (a - b) + bias;
    }
    if (branch == kBranchUncond) {  // a different field for the negative branch
      for (int64_t i = 0; i < x.numel(); ++i) vp[i] = 0.5f * vp[i];
    }
    return Status::ok();
  }
};

// Returns the velocities recorded in the end-to-end run (pipe.step{k}.cond / .uncond).
class ReplayModel : public VelocityModel {
 public:
  std::vector<int64_t> seen_timesteps;
  Status predict(Tensor* v, int step, int64_t timestep, const Tensor& x, int branch) override {
    if (branch == kBranchCond) seen_timesteps.push_back(timestep);
    *v = test::golden_tensor(strfmt("pipe.step%d.%s", step, branch == kBranchCond ? "cond" : "uncond"));
    return Status::ok();
  }
};

Tensor clone_of(const Tensor& t) {
  auto c = t.clone();
  EXPECT_TRUE(c);
  return *c;
}

struct LoopCase {
  const char* solver;
  const char* loop;
  int steps;
};

}  // namespace

// Free-running: the model sees our own latents, so tanh's last-bit differences from PyTorch's accumulate.
TEST(SamplingLoop, SyntheticModelMatchesRecordedLoops) {
  const LoopCase cases[] = {{"unipc", "unipc50_shift5_loop", 50},
                            {"unipc", "unipc6_shift5_loop", 6},
                            {"dpm++", "dpmpp50_shift5_loop", 50}};
  for (const LoopCase& c : cases) {
    Tensor xs = test::golden_tensor(std::string(c.loop) + ".x");  // [N+1, 1, 16, 2, 4, 4]
    Tensor vs = test::golden_tensor(std::string(c.loop) + ".v");  // [N, 1, 16, 2, 4, 4]
    const int64_t n = xs.numel() / xs.dim(0);
    auto x = Tensor::create(DType::f32, {1, 16, 2, 4, 4});
    ASSERT_TRUE(x);
    std::copy(xs.f32(), xs.f32() + n, x->f32());
    auto sched = make_scheduler(c.solver, TorchRounding::cpu);  // the recorded loops ran on CPU tensors
    ASSERT_TRUE(sched);
    ASSERT_TRUE((*sched)->set_timesteps(c.steps, 5.0).is_ok());
    SyntheticModel model;
    test::MaxErr x_err, v_err;
    SamplingOptions opt;
    opt.has_negative = false;
    opt.recorder = [&](const StepRecord& r) {
      EXPECT_EQ(r.uncond, nullptr);
      EXPECT_EQ(r.velocity, r.cond);
      v_err.add(r.cond->f32(), vs.f32() + r.step * n, n, r.step * n);
      x_err.add(r.latent_after->f32(), xs.f32() + (r.step + 1) * n, n, (r.step + 1) * n);
      return Status::ok();
    };
    Status st = run_sampling_loop(&*x, &model, sched->get(), opt);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    EXPECT_EQ(model.calls[kBranchCond], c.steps);
    EXPECT_EQ(model.calls[kBranchUncond], 0);
    std::printf("[ sched    ] loop %-20s %-6s synthetic model: max|dx| = %.3g (rel %.3g), max|dv| = %.3g\n", c.loop,
                c.solver, x_err.abs, x_err.rel(), v_err.abs);
    EXPECT_LE(x_err.abs, 1e-6) << c.loop << " worst flat index " << x_err.worst;
  }
}

// The end-to-end run was on CUDA: with TorchRounding::cuda every latent must equal the reference bit
// for bit; the CPU rounding must stay within 1e-6 of max|x|.
TEST(SamplingLoop, ReplayOfEndToEndRunWithCfg5) {
  for (TorchRounding rounding : {TorchRounding::cuda, TorchRounding::cpu}) {
    const char* flavour = rounding == TorchRounding::cpu ? "cpu" : "cuda";
    Tensor x = clone_of(test::golden_tensor("pipe.in.noise"));  // [16, 3, 8, 12]
    auto sched = make_scheduler("unipc", rounding);
    ASSERT_TRUE(sched);
    ASSERT_TRUE((*sched)->set_timesteps(6, 5.0).is_ok());
    ReplayModel model;
    SamplingOptions opt;
    opt.guidance_scale = 5.0f;
    test::MaxErr step_err;
    int exact_steps = 0;
    opt.recorder = [&](const StepRecord& r) {
      EXPECT_NE(r.uncond, nullptr);
      Tensor want = test::golden_tensor(strfmt("pipe.step%d.latent_after", r.step));
      step_err.add(r.latent_after->f32(), want.f32(), want.numel(), r.step * want.numel());
      exact_steps += std::memcmp(r.latent_after->raw(), want.raw(), want.nbytes()) == 0;
      return Status::ok();
    };
    Status st = run_sampling_loop(&x, &model, sched->get(), opt);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    Tensor ts = test::golden_tensor("pipe.timesteps");
    ASSERT_EQ(model.seen_timesteps.size(), 6u);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(model.seen_timesteps[i], ts.data<int64_t>()[i]) << "step " << i;
    test::MaxErr out_err;
    Tensor want = test::golden_tensor("pipe.out.latent");
    out_err.add(x.f32(), want.f32(), want.numel());
    std::printf("[ sched    ] end-to-end replay, CFG 5 + UniPC 6, %-4s rounding: max|dx| %.3g (rel %.3g), "
                "final %.3g, bit-exact steps %d/6\n",
                flavour, step_err.abs, step_err.rel(), out_err.abs, exact_steps);
    EXPECT_LE(step_err.rel(), 1e-6) << flavour << " worst flat index " << step_err.worst;
    EXPECT_LE(out_err.rel(), 1e-6) << flavour << " worst index " << out_err.worst;
    if (rounding == TorchRounding::cuda) {
      EXPECT_EQ(exact_steps, 6) << "the CUDA-rounding solver no longer mirrors the reference pipeline";
    }
  }
}

TEST(SamplingLoop, GuidanceCombinationAndSinglePass) {
  const float cond[3] = {1.0f, -2.0f, 0.5f}, uncond[3] = {0.25f, 1.0f, 0.5f};
  float v[3];
  cfg_combine(v, cond, uncond, 5.0f, 3);
  EXPECT_EQ(v[0], 0.25f + 5.0f * 0.75f);
  EXPECT_EQ(v[1], 1.0f + 5.0f * -3.0f);
  EXPECT_EQ(v[2], 0.5f);

  struct Case {
    float g;
    bool negative;
    int uncond_calls;
  };
  for (Case c : {Case{5.0f, true, 4}, Case{1.0f, true, 0}, Case{5.0f, false, 0}}) {
    auto x = Tensor::zeros(DType::f32, {2, 3});
    ASSERT_TRUE(x);
    x->f32()[0] = 0.3f;
    auto sched = make_scheduler("euler");
    ASSERT_TRUE(sched);
    ASSERT_TRUE((*sched)->set_timesteps(4, 5.0).is_ok());
    SyntheticModel model;
    SamplingOptions opt;
    opt.guidance_scale = c.g;
    opt.has_negative = c.negative;
    Tensor expect_v;
    opt.recorder = [&](const StepRecord& r) {
      // The guided velocity is u + g·(c − u) of the two recorded branches.
      for (int64_t i = 0; i < r.velocity->numel(); ++i) {
        const float want = r.uncond ? r.uncond->f32()[i] + c.g * (r.cond->f32()[i] - r.uncond->f32()[i])
                                    : r.cond->f32()[i];
        EXPECT_EQ(r.velocity->f32()[i], want) << "step " << r.step;
      }
      return Status::ok();
    };
    ASSERT_TRUE(run_sampling_loop(&*x, &model, sched->get(), opt).is_ok());
    EXPECT_EQ(model.calls[kBranchCond], 4);
    EXPECT_EQ(model.calls[kBranchUncond], c.uncond_calls) << "g = " << c.g << ", negative = " << c.negative;
  }
}

TEST(SamplingLoop, ProgressCallbackCancels) {
  Tensor noise = test::golden_tensor("unipc6_shift5_loop.x");  // x_0 is the first 512 values
  const int64_t n = noise.numel() / noise.dim(0);
  auto make_x = [&] {
    auto x = Tensor::create(DType::f32, {n});
    EXPECT_TRUE(x);
    std::copy(noise.f32(), noise.f32() + n, x->f32());
    return *x;
  };
  // Reference: the latent after 3 steps of an uncancelled run.
  Tensor after3;
  {
    Tensor full = make_x();
    auto sched = make_scheduler("unipc");
    ASSERT_TRUE(sched && (*sched)->set_timesteps(6, 5.0).is_ok());
    SyntheticModel model;
    SamplingOptions opt;
    opt.has_negative = false;
    opt.recorder = [&](const StepRecord& r) {
      if (r.step == 2) after3 = clone_of(*r.latent_after);
      return Status::ok();
    };
    ASSERT_TRUE(run_sampling_loop(&full, &model, sched->get(), opt).is_ok());
  }
  Tensor x = make_x();
  auto sched = make_scheduler("unipc");
  ASSERT_TRUE(sched && (*sched)->set_timesteps(6, 5.0).is_ok());
  SyntheticModel model;
  SamplingOptions opt;
  opt.has_negative = false;
  std::vector<int> done;
  double last_elapsed = -1;
  opt.progress = [&](int steps_done, int total, double elapsed) {
    EXPECT_EQ(total, 6);
    EXPECT_GE(elapsed, last_elapsed);
    last_elapsed = elapsed;
    done.push_back(steps_done);
    return steps_done < 3;
  };
  Status st = run_sampling_loop(&x, &model, sched->get(), opt);
  EXPECT_EQ(st.code(), StatusCode::cancelled) << st.to_string();
  EXPECT_NE(st.message().find("after step 3 of 6"), std::string::npos) << st.message();
  EXPECT_EQ(done, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(model.calls[kBranchCond], 3);
  test::MaxErr err;
  err.add(x.f32(), after3.f32(), n);
  EXPECT_EQ(err.abs, 0.0) << "the latent after a cancel is the one after the last completed step";
  // Returning false after the last step has nothing left to cancel.
  auto sched2 = make_scheduler("euler");
  ASSERT_TRUE(sched2 && (*sched2)->set_timesteps(2, 5.0).is_ok());
  Tensor x2 = make_x();
  opt.progress = [](int, int, double) { return false; };
  EXPECT_EQ(run_sampling_loop(&x2, &model, sched2->get(), opt).code(), StatusCode::cancelled);
  opt.progress = [](int done_steps, int total, double) { return done_steps < total; };
  EXPECT_TRUE(run_sampling_loop(&x2, &model, sched2->get(), opt).is_ok());
}

TEST(SamplingLoop, ErrorsAreReported) {
  struct WrongShape : VelocityModel {
    Status predict(Tensor* v, int, int64_t, const Tensor&, int) override {
      VDIT_ASSIGN(*v, Tensor::zeros(DType::f32, {3}));
      return Status::ok();
    }
  } wrong;
  struct Failing : VelocityModel {
    Status predict(Tensor* v, int step, int64_t, const Tensor&, int) override {
      std::fill(v->f32(), v->f32() + v->numel(), 0.0f);
      return step == 1 ? io_error("weights vanished") : Status::ok();
    }
  } failing;
  auto sched = make_scheduler("unipc");
  ASSERT_TRUE(sched);
  auto x = Tensor::zeros(DType::f32, {2, 2});
  ASSERT_TRUE(x);
  SamplingOptions opt;
  EXPECT_EQ(run_sampling_loop(&*x, &wrong, sched->get(), opt).code(), StatusCode::invalid_argument)
      << "no set_timesteps yet";
  ASSERT_TRUE((*sched)->set_timesteps(3, 5.0).is_ok());
  Status st = run_sampling_loop(&*x, &wrong, sched->get(), opt);
  EXPECT_EQ(st.code(), StatusCode::invalid_argument);
  EXPECT_NE(st.message().find("[2, 2]"), std::string::npos) << st.message();
  st = run_sampling_loop(&*x, &failing, sched->get(), opt);
  EXPECT_EQ(st.code(), StatusCode::io_error);
  EXPECT_NE(st.message().find("step 1"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("weights vanished"), std::string::npos) << st.message();
  SyntheticModel ok;
  opt.recorder = [](const StepRecord&) { return not_found("no place to write"); };
  EXPECT_EQ(run_sampling_loop(&*x, &ok, sched->get(), opt).code(), StatusCode::not_found);
  opt.recorder = nullptr;
  EXPECT_EQ(run_sampling_loop(nullptr, &ok, sched->get(), opt).code(), StatusCode::invalid_argument);
  EXPECT_EQ(run_sampling_loop(&*x, nullptr, sched->get(), opt).code(), StatusCode::invalid_argument);
  auto xi = Tensor::zeros(DType::bf16, {2, 2});
  ASSERT_TRUE(xi);
  EXPECT_EQ(run_sampling_loop(&*xi, &ok, sched->get(), opt).code(), StatusCode::invalid_argument);
  opt.guidance_scale = NAN;
  EXPECT_EQ(run_sampling_loop(&*x, &ok, sched->get(), opt).code(), StatusCode::invalid_argument);
}
