// Counter-based RNG: Philox4x32-10 known-answer vectors, the float64 log/sincos against libm, normals
// against an independent Python implementation, determinism, thread-count and shape independence,
// and the moments of a million samples.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "dit/core/parallel.h"
#include "dit/core/rng.h"

using namespace vdit;

namespace {

// Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter, key -> output.
struct Kat {
  uint32_t ctr[4];
  uint32_t key[2];
  uint32_t out[4];
};
const Kat kKats[] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

// From tests/data/sched/make_rng_reference.py (Python integers + math.log/cos/sin): 8 normals each.
struct Reference {
  uint64_t seed;
  uint64_t first;
  float z[8];
};
const Reference kReferences[] = {
    {0, 0, {0.991137683f, -0.92466259f, -0.617608964f, -0.482068598f, -0.153638229f, 0.180825904f, 0.831735134f,
            0.197439715f}},
    {42, 0, {-0.97018981f, 0.19401896f, -1.23562074f, 1.92392671f, -0.07318151f, 0.139137492f, -1.10666502f,
             0.326682955f}},
    {0xDEADBEEFCAFEBABEull, (1ull << 40) + 6,
     {1.96766484f, -0.829601526f, 0.153058782f, -0.995509267f, 0.400790364f, -0.970468402f, -0.757036507f,
      1.04607308f}},
};

}  // namespace

TEST(Rng, PhiloxKnownAnswers) {
  for (const Kat& k : kKats) {
    Philox4x32 ctr{{k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3]}};
    Philox4x32 out = philox4x32_10(ctr, k.key[0], k.key[1]);
    for (int j = 0; j < 4; ++j) EXPECT_EQ(out.v[j], k.out[j]) << "word " << j << " of KAT with ctr[0]=" << k.ctr[0];
  }
}

TEST(Rng, PortableLogAndSincosMatchLibm) {
  // Every input the noise can produce has this form: (w + 0.5)/2^32 for log, w/2^32 for the angle.
  double worst_log = 0, worst_trig = 0;
  uint32_t w = 12345;
  for (int i = 0; i < 200000; ++i) {
    w = w * 1664525u + 1013904223u;  // LCG, only to spread the inputs
    uint32_t wi = (i < 4) ? (i < 2 ? i : 0xffffffffu - (i - 2)) : w;  // include both ends
    const double u = (static_cast<double>(wi) + 0.5) / 4294967296.0;
    const double ln = rng_detail::log_positive(u);
    worst_log = std::max(worst_log, std::fabs(ln - std::log(u)) / std::fabs(std::log(u)));
    const double t = static_cast<double>(wi) / 4294967296.0;
    double s, c;
    rng_detail::sincos_2pi(t, &s, &c);
    worst_trig = std::max(worst_trig, std::fabs(s - std::sin(2 * M_PI * t)));
    worst_trig = std::max(worst_trig, std::fabs(c - std::cos(2 * M_PI * t)));
  }
  std::printf("[ rng      ] float64 log: max rel error %.3g; sincos 2πt: max abs error %.3g (vs libm)\n", worst_log,
              worst_trig);
  EXPECT_LT(worst_log, 4e-16) << "relative error of log_positive";
  EXPECT_LT(worst_trig, 2e-15) << "absolute error of sincos_2pi (libm's own 2πt rounding is ~4e-16)";
  // Exact quarter turns.
  double s, c;
  rng_detail::sincos_2pi(0.25, &s, &c);
  EXPECT_EQ(s, 1.0);
  EXPECT_EQ(c, 0.0);
  rng_detail::sincos_2pi(0.5, &s, &c);
  EXPECT_EQ(c, -1.0);
}

TEST(Rng, MatchesIndependentReference) {
  for (const Reference& r : kReferences) {
    std::vector<float> z(8);
    fill_gaussian(z.data(), 8, r.seed, r.first);
    for (int j = 0; j < 8; ++j) {
      // Both sides round a float64 value to float; allow one float ulp for the last bit of the float64 math.
      EXPECT_NEAR(z[j], r.z[j], std::fabs(r.z[j]) * 1.2e-7f) << "seed " << r.seed << " index " << r.first + j;
      EXPECT_EQ(gaussian_at(r.seed, r.first + j), z[j]) << "gaussian_at vs fill_gaussian, index " << r.first + j;
    }
  }
}

TEST(Rng, DeterministicAndShapeIndependent) {
  auto a = gaussian_noise(7, {16, 3, 8, 12});
  auto b = gaussian_noise(7, {16 * 3 * 8 * 12});
  auto c = gaussian_noise(8, {16, 3, 8, 12});
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(0, std::memcmp(a->raw(), b->raw(), a->nbytes())) << "same seed, same elements, other shape";
  int64_t equal = 0;
  for (int64_t i = 0; i < a->numel(); ++i) equal += a->f32()[i] == c->f32()[i];
  EXPECT_EQ(equal, 0) << "seeds 7 and 8 share elements";
  // Element i depends only on (seed, i): a window starting mid-block equals the same slice of the whole.
  std::vector<float> window(101);
  fill_gaussian(window.data(), 101, 7, 1003);
  EXPECT_EQ(0, std::memcmp(window.data(), a->f32() + 1003, sizeof(float) * 101));
  // Seeds differing only in the high 32 bits give different noise.
  EXPECT_NE(gaussian_at(1, 0), gaussian_at(1 + (1ull << 32), 0));
}

TEST(Rng, IndependentOfThreadCount) {
  const int64_t n = (1 << 16) + 3;
  std::vector<std::vector<float>> runs;
  for (int threads : {1, 2, 3, 8}) {
    set_num_threads(threads);
    runs.emplace_back(static_cast<size_t>(n));
    fill_gaussian(runs.back().data(), n, 123, 5);
  }
  set_num_threads(0);
  for (size_t r = 1; r < runs.size(); ++r) {
    EXPECT_EQ(0, std::memcmp(runs[0].data(), runs[r].data(), sizeof(float) * n)) << "run " << r;
  }
}

TEST(Rng, MomentsOfAMillionSamples) {
  auto t = gaussian_noise(2024, {1 << 20});
  ASSERT_TRUE(t);
  const float* z = t->f32();
  const double n = static_cast<double>(t->numel());
  double m1 = 0, m2 = 0, m4 = 0, within1 = 0, lag1 = 0, max_abs = 0;
  for (int64_t i = 0; i < t->numel(); ++i) {
    const double v = z[i];
    ASSERT_TRUE(std::isfinite(v)) << "index " << i;
    m1 += v;
    m2 += v * v;
    m4 += v * v * v * v;
    within1 += std::fabs(v) < 1.0;
    if (i > 0) lag1 += v * z[i - 1];
    max_abs = std::max(max_abs, std::fabs(v));
  }
  m1 /= n;
  m2 /= n;
  m4 /= n;
  // Bounds are about 5 standard errors at n = 2^20 (se(mean) = 1e-3, se(E z²) = 1.4e-3, se(E z⁴) = 1e-2).
  EXPECT_NEAR(m1, 0.0, 5e-3);
  EXPECT_NEAR(m2, 1.0, 7e-3);
  EXPECT_NEAR(m4, 3.0, 6e-2);
  EXPECT_NEAR(within1 / n, 0.682689, 2.5e-3);
  EXPECT_NEAR(lag1 / n, 0.0, 5e-3) << "neighbouring elements are correlated";
  EXPECT_GT(max_abs, 4.0);
  EXPECT_LT(max_abs, 6.8);  // Box–Muller with u ≥ 2^-33 cannot exceed sqrt(66 ln 2) ≈ 6.77
}

TEST(Rng, RejectsNegativeShape) {
  auto t = gaussian_noise(1, {4, -1});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.status().code(), StatusCode::invalid_argument);
}
