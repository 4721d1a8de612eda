// Solvers against the recorded official loops (feed the recorded v_i, compare every x_{i+1}), plus
// checks that do not depend on the golden: exact recovery of x0 for a single-point flow, accuracy on a
// linear ODE with a known solution, thread-count independence, reset, and caller errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "dit/core/parallel.h"
#include "schedulers/scheduler.h"
#include "tests/schedulers/sched_golden.h"

using namespace vdit;

namespace {

constexpr double kLoopTol = 1e-6;  // max |x − x_ref| over every element of every step (brief: ≤ 1e-6)

struct LoopResult {
  test::MaxErr all;        // over x_1 .. x_N
  test::MaxErr last;       // x_N only
  int bit_exact_steps = 0; // steps whose whole x_{i+1} equals the reference bit for bit
  int steps = 0;
};

// Free-running: our own x_i with the recorded v_i; the x_{i+1} errors therefore accumulate.
LoopResult run_recorded_loop(const char* solver, TorchRounding rounding, const std::string& loop, int steps,
                             double shift) {
  Tensor xs = test::golden_tensor(loop + ".x");  // [N+1, 1, 16, 2, 4, 4]
  Tensor vs = test::golden_tensor(loop + ".v");  // [N, 1, 16, 2, 4, 4]
  EXPECT_EQ(xs.dim(0), steps + 1);
  EXPECT_EQ(vs.dim(0), steps);
  const int64_t n = xs.numel() / xs.dim(0);
  auto sched = make_scheduler(solver, rounding);
  EXPECT_TRUE(sched);
  EXPECT_TRUE((*sched)->set_timesteps(steps, shift).is_ok());
  std::vector<float> x(xs.f32(), xs.f32() + n);
  LoopResult r;
  r.steps = steps;
  for (int i = 0; i < steps; ++i) {
    Status st = (*sched)->step(x.data(), vs.f32() + i * n, n);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    const float* ref = xs.f32() + (i + 1) * n;
    r.all.add(x.data(), ref, n, (i + 1) * n);
    if (i == steps - 1) r.last.add(x.data(), ref, n);
    r.bit_exact_steps += std::memcmp(x.data(), ref, sizeof(float) * n) == 0;
  }
  EXPECT_EQ((*sched)->step_index(), steps);
  return r;
}

// The recorded loops ran on CPU tensors: with TorchRounding::cpu every x_{i+1} must equal the reference
// bit for bit; the default (CUDA) rounding must stay within kLoopTol.
void check_loop(const char* solver, const std::string& loop, int steps, double shift) {
  for (TorchRounding rounding : {TorchRounding::cpu, TorchRounding::cuda}) {
    const char* flavour = rounding == TorchRounding::cpu ? "cpu" : "cuda";
    LoopResult r = run_recorded_loop(solver, rounding, loop, steps, shift);
    std::printf("[ sched    ] %-20s %-6s %-4s rounding: max|dx| = %.3g (rel %.3g), final step %.3g, "
                "bit-exact steps %d/%d\n",
                loop.c_str(), solver, flavour, r.all.abs, r.all.rel(), r.last.abs, r.bit_exact_steps, r.steps);
    EXPECT_LE(r.all.abs, kLoopTol) << loop << " " << flavour << " worst flat index " << r.all.worst;
    if (rounding == TorchRounding::cpu) {
      EXPECT_EQ(r.bit_exact_steps, r.steps) << loop << ": the CPU-rounding solver no longer mirrors the reference";
    }
  }
}

// x_σ = (1−σ)·x0 + σ·ε is the flow of a single data point x0; its exact velocity is (x − x0)/σ. Every
// solver's data prediction is then x0 at every step, so x_N must be x0 up to rounding.
void run_point_flow(Scheduler* s, std::vector<float>* x, const std::vector<float>& x0) {
  const int64_t n = static_cast<int64_t>(x->size());
  std::vector<float> v(x->size());
  for (int i = 0; i < s->num_steps(); ++i) {
    const float sigma = s->sigmas()[i];
    for (int64_t e = 0; e < n; ++e) v[e] = ((*x)[e] - x0[e]) / sigma;
    ASSERT_TRUE(s->step(x->data(), v.data(), n).is_ok());
  }
}

}  // namespace

TEST(Solvers, UniPC50MatchesOfficialLoop) { check_loop("unipc", "unipc50_shift5_loop", 50, 5.0); }
TEST(Solvers, UniPC6MatchesOfficialLoop) { check_loop("unipc", "unipc6_shift5_loop", 6, 5.0); }
TEST(Solvers, Dpmpp50MatchesOfficialLoop) { check_loop("dpm++", "dpmpp50_shift5_loop", 50, 5.0); }

TEST(Solvers, EulerStepIsTheFlowUpdate) {
  auto s = make_scheduler("euler");
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->set_timesteps(4, 3.0).is_ok());
  std::vector<float> x = {1.0f, -2.0f, 0.25f};
  const std::vector<float> v = {0.5f, 3.0f, -1.0f};
  std::vector<double> want(x.begin(), x.end());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE((*s)->step(x.data(), v.data(), 3).is_ok());
    const double dt = static_cast<double>((*s)->sigmas()[i + 1]) - (*s)->sigmas()[i];
    for (int e = 0; e < 3; ++e) {
      want[e] += dt * v[e];
      EXPECT_NEAR(x[e], want[e], 1e-6) << "step " << i << " element " << e;
    }
  }
}

TEST(Solvers, AllRecoverThePointOfASinglePointFlow) {
  const int64_t n = 1000;
  std::vector<float> x0(n), noise(n);
  for (int64_t e = 0; e < n; ++e) {
    x0[e] = std::sin(0.37f * e) * 1.5f;
    noise[e] = std::cos(1.3f * e + 0.2f);
  }
  for (const std::string& name : scheduler_names()) {
    for (int steps : {1, 2, 6, 50}) {
      auto s = make_scheduler(name);
      ASSERT_TRUE(s);
      ASSERT_TRUE((*s)->set_timesteps(steps, 5.0).is_ok());
      const float sigma0 = (*s)->sigmas()[0];
      std::vector<float> x(n);
      for (int64_t e = 0; e < n; ++e) x[e] = (1 - sigma0) * x0[e] + sigma0 * noise[e];
      run_point_flow(s->get(), &x, x0);
      test::MaxErr err;
      err.add(x.data(), x0.data(), n);
      EXPECT_LT(err.abs, 2e-5) << name << " with " << steps << " steps, worst index " << err.worst;
    }
  }
}

TEST(Solvers, LinearOdeAccuracyOrdersTheSolvers) {
  // dx/dσ = a·x from σ_0 down to 0 has x(0) = x(σ_0)·exp(−a·σ_0). Errors measured with 50 steps, shift 5:
  // Euler is first order; UniPC (with corrector) and DPM++ are far more accurate.
  const float a = 0.8f;
  double err[3] = {0, 0, 0};
  int k = 0;
  for (const char* name : {"euler", "unipc", "dpm++"}) {
    auto s = make_scheduler(name);
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->set_timesteps(50, 5.0).is_ok());
    float x = 1.0f, v = 0;
    for (int i = 0; i < 50; ++i) {
      v = a * x;
      ASSERT_TRUE((*s)->step(&x, &v, 1).is_ok());
    }
    err[k++] = std::fabs(x - std::exp(-a * static_cast<double>((*s)->sigmas()[0])));
  }
  std::printf("[ sched    ] linear ODE, 50 steps: |error| euler %.3g, unipc %.3g, dpm++ %.3g\n", err[0], err[1], err[2]);
  EXPECT_LT(err[0], 2e-2);
  EXPECT_LT(err[1], err[0] / 20);
  EXPECT_LT(err[2], err[0] / 5);
}

TEST(Solvers, IndependentOfThreadCount) {
  const int64_t n = 50000;  // above the threading cut-off of parallel_for_static
  std::vector<float> init(n), vel(n);
  for (int64_t e = 0; e < n; ++e) {
    init[e] = std::sin(0.01f * e);
    vel[e] = std::cos(0.02f * e);
  }
  for (const std::string& name : scheduler_names()) {
    std::vector<std::vector<float>> out;
    for (int threads : {1, 4}) {
      set_num_threads(threads);
      auto s = make_scheduler(name);
      ASSERT_TRUE(s);
      ASSERT_TRUE((*s)->set_timesteps(6, 5.0).is_ok());
      std::vector<float> x = init;
      for (int i = 0; i < 6; ++i) ASSERT_TRUE((*s)->step(x.data(), vel.data(), n).is_ok());
      out.push_back(x);
    }
    set_num_threads(0);
    EXPECT_EQ(0, std::memcmp(out[0].data(), out[1].data(), sizeof(float) * n)) << name;
  }
}

TEST(Solvers, ResetReplaysTheRun) {
  Tensor xs = test::golden_tensor("unipc6_shift5_loop.x");
  Tensor vs = test::golden_tensor("unipc6_shift5_loop.v");
  const int64_t n = xs.numel() / xs.dim(0);
  for (const std::string& name : scheduler_names()) {
    auto s = make_scheduler(name);
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->set_timesteps(6, 5.0).is_ok());
    std::vector<float> runs[2];
    for (auto& x : runs) {
      x.assign(xs.f32(), xs.f32() + n);
      for (int i = 0; i < 6; ++i) ASSERT_TRUE((*s)->step(x.data(), vs.f32() + i * n, n).is_ok());
      (*s)->reset();
      EXPECT_EQ((*s)->step_index(), 0);
    }
    EXPECT_EQ(0, std::memcmp(runs[0].data(), runs[1].data(), sizeof(float) * n)) << name;
  }
}

TEST(Solvers, FactoryAndCallerErrors) {
  auto bad = make_scheduler("ddim");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(bad.status().message().find("ddim"), std::string::npos);
  EXPECT_NE(bad.status().message().find("unipc, euler, dpm++"), std::string::npos);
  for (const std::string& name : scheduler_names()) {
    auto s = make_scheduler(name);
    ASSERT_TRUE(s) << name;
    EXPECT_EQ(name, (*s)->name());
    float x[4] = {1, 2, 3, 4}, v[4] = {0, 0, 0, 0};
    EXPECT_EQ((*s)->step(x, v, 4).code(), StatusCode::invalid_argument) << "before set_timesteps";
    ASSERT_TRUE((*s)->set_timesteps(2, 5.0).is_ok());
    EXPECT_EQ((*s)->step(nullptr, v, 4).code(), StatusCode::invalid_argument);
    EXPECT_EQ((*s)->step(x, v, 0).code(), StatusCode::invalid_argument);
    ASSERT_TRUE((*s)->step(x, v, 4).is_ok());
    Status mismatch = (*s)->step(x, v, 3);
    EXPECT_EQ(mismatch.code(), StatusCode::invalid_argument);
    EXPECT_NE(mismatch.message().find("reset()"), std::string::npos) << mismatch.message();
    ASSERT_TRUE((*s)->step(x, v, 4).is_ok());
    Status done = (*s)->step(x, v, 4);
    EXPECT_EQ(done.code(), StatusCode::invalid_argument);
    EXPECT_NE(done.message().find("all 2 steps are done"), std::string::npos) << done.message();
    for (float e : x) EXPECT_TRUE(std::isfinite(e)) << name;
    // The tensor overload checks dtype and size.
    (*s)->reset();
    auto xt = Tensor::zeros(DType::f32, {4});
    auto vt = Tensor::zeros(DType::bf16, {4});
    auto vs = Tensor::zeros(DType::f32, {5});
    ASSERT_TRUE(xt && vt && vs);
    EXPECT_EQ((*s)->step(&*xt, *vt).code(), StatusCode::invalid_argument);
    EXPECT_EQ((*s)->step(&*xt, *vs).code(), StatusCode::invalid_argument);
  }
}
