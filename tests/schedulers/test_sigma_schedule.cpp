// Sigma grids and integer timesteps against the official tables (UniPC and DPM++, shifts 3, 5, 8,
// 50 steps; the 6-step end-to-end run), through the free functions and through each scheduler.
#include <gtest/gtest.h>

#include <cmath>

#include "schedulers/scheduler.h"
#include "tests/schedulers/sched_golden.h"

using namespace vdit;

namespace {

// Exact equality is expected: the grid is the same float64 arithmetic as numpy's, rounded once to f32.
void expect_table(const SigmaSchedule& s, const std::string& prefix) {
  Tensor t = test::golden_tensor(prefix + ".timesteps");
  Tensor sg = test::golden_tensor(prefix + ".sigmas");
  ASSERT_EQ(t.dtype(), DType::i64);
  ASSERT_EQ(static_cast<int64_t>(s.timesteps.size()), t.numel()) << prefix;
  ASSERT_EQ(static_cast<int64_t>(s.sigmas.size()), sg.numel()) << prefix;
  for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(s.timesteps[i], t.data<int64_t>()[i]) << prefix << " t[" << i << "]";
  for (int64_t i = 0; i < sg.numel(); ++i) EXPECT_EQ(s.sigmas[i], sg.f32()[i]) << prefix << " sigma[" << i << "]";
}

}  // namespace

TEST(SigmaSchedule, UniPCTablesMatchOfficial) {
  for (int shift : {3, 5, 8}) {
    auto s = unipc_sigma_schedule(50, shift);
    ASSERT_TRUE(s) << s.status().to_string();
    expect_table(*s, "unipc50_shift" + std::to_string(shift));
  }
  auto s6 = unipc_sigma_schedule(6, 5.0);
  ASSERT_TRUE(s6);
  expect_table(*s6, "unipc6_shift5");
  expect_table(*s6, "pipe");
}

TEST(SigmaSchedule, DpmppTablesMatchOfficial) {
  for (int shift : {3, 5, 8}) {
    auto s = dpmpp_sigma_schedule(50, shift);
    ASSERT_TRUE(s) << s.status().to_string();
    expect_table(*s, "dpmpp50_shift" + std::to_string(shift));
    EXPECT_EQ(s->timesteps[0], 1000);
    EXPECT_EQ(s->sigmas[0], 1.0f);
  }
}

TEST(SigmaSchedule, SpecValues) {
  // wan.md §5: shift 5, N = 50 starts 999, 995, 991 and ends 241, 172, 92; shift 3 ends 111, 57.
  auto s5 = unipc_sigma_schedule(50, 5.0);
  auto s3 = unipc_sigma_schedule(50, 3.0);
  ASSERT_TRUE(s5 && s3);
  EXPECT_EQ(s5->timesteps[0], 999);
  EXPECT_EQ(s5->timesteps[2], 991);
  EXPECT_EQ(s5->timesteps[47], 241);
  EXPECT_EQ(s5->timesteps[49], 92);
  EXPECT_EQ(s3->timesteps[48], 111);
  EXPECT_EQ(s3->timesteps[49], 57);
  EXPECT_EQ(s5->sigmas[50], 0.0f);
  EXPECT_DOUBLE_EQ(shift_sigma(0.5, 1.0), 0.5);
  EXPECT_DOUBLE_EQ(shift_sigma(0.5, 3.0), 0.75);
}

TEST(SigmaSchedule, SchedulersUseTheirGrid) {
  const std::pair<const char*, const char*> cases[] = {
      {"unipc", "unipc50_shift8"}, {"euler", "unipc50_shift8"}, {"dpm++", "dpmpp50_shift8"}};
  for (auto [name, prefix] : cases) {
    auto sched = make_scheduler(name);
    ASSERT_TRUE(sched) << sched.status().to_string();
    ASSERT_TRUE((*sched)->set_timesteps(50, 8.0).is_ok());
    EXPECT_EQ((*sched)->num_steps(), 50);
    SigmaSchedule s{(*sched)->timesteps(), (*sched)->sigmas()};
    expect_table(s, prefix);
  }
}

TEST(SigmaSchedule, RejectsBadArguments) {
  EXPECT_EQ(unipc_sigma_schedule(0, 5.0).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(unipc_sigma_schedule(-3, 5.0).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(unipc_sigma_schedule(50, 0.0).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(dpmpp_sigma_schedule(50, -1.0).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(dpmpp_sigma_schedule(50, std::nan("")).status().code(), StatusCode::invalid_argument);
  // A huge shift pushes σ_0 to 1.0f (λ = −∞) on the UniPC grid: refused with a message, not an inf.
  auto degenerate = unipc_sigma_schedule(50, 1e6);
  ASSERT_FALSE(degenerate);
  EXPECT_NE(degenerate.status().message().find("degenerate"), std::string::npos) << degenerate.status().message();
  auto sched = make_scheduler("unipc");
  ASSERT_TRUE(sched);
  Status st = (*sched)->set_timesteps(0, 5.0);
  EXPECT_EQ(st.code(), StatusCode::invalid_argument);
  EXPECT_NE(st.message().find("unipc"), std::string::npos) << st.message();
}
