// Block-sparse CPU kernel vs the dense-masked double reference on seeded randomized sweeps: head dims 64/128
// (and 72, padded), lengths that are not block multiples, block 64/128, random and structured layouts
// (band / per-frame band predicates), shared / per-head lists, no / shared / per-head permutations, with
// and without the Re-ttention epilogue. Also: dense kernel vs reference, layout validation errors.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "attention/block_layout.h"
#include "attention/block_sparse_cpu.h"
#include "attention/cpu_flash.h"
#include "attention/dense_cpu.h"
#include "tests/attention/tolerances.h"
#include "tests/harness/test_util.h"

namespace vdit::attn {
namespace {

struct Case {
  int HD;
  int64_t L;
  int NH;
  int block;
  std::string layout;  // "random", "band", "frame_band", "dense"
  std::string perm;    // "none", "shared", "per_head"
  bool head_shared;
  bool epilogue;
  double density;
  uint32_t seed;
  std::string repro() const {
    return strfmt("attn(hd=%d, L=%lld, NH=%d, block=%d, layout=%s, density=%.2f, perm=%s, %s, epilogue=%d, seed=%u)",
                  HD, static_cast<long long>(L), NH, block, layout.c_str(), density, perm.c_str(),
                  head_shared ? "head-shared" : "per-head", epilogue ? 1 : 0, seed);
  }
};

std::vector<float> randn(size_t n, std::mt19937& rng, float sd) {
  std::normal_distribution<float> nd(0.f, sd);
  std::vector<float> x(n);
  for (auto& e : x) e = nd(rng);
  return x;
}

BlockLayout make_case_layout(const Case& c, std::mt19937& rng) {
  const int64_t nb = (c.L + c.block - 1) / c.block;
  const int lh = c.head_shared ? 1 : c.NH;
  std::vector<uint8_t> states(static_cast<size_t>(lh * nb * nb), kBlockAbsent);
  std::uniform_real_distribution<double> u(0, 1);
  ElementPredicate pred;
  if (c.layout == "band") {
    pred.kind = ElementPredicate::Kind::band;
    pred.half_width = std::max<int64_t>(1, c.L / 7);
  } else if (c.layout == "frame_band") {
    pred.kind = ElementPredicate::Kind::frame_band;
    pred.frame_tokens = 37;
    pred.half_width = 5;
    pred.video_begin = 3;  // 3 "text" tokens first, unrestricted
    pred.video_end = 3 + (c.L - 3) / 37 * 37;
  }
  for (size_t i = 0; i < states.size(); ++i) {
    if (c.layout == "dense") {
      states[i] = kBlockFull;
    } else if (c.layout == "random") {
      const double x = u(rng);
      states[i] = x < c.density * 0.5 ? kBlockFull : x < c.density ? kBlockPartial : kBlockAbsent;
    } else {
      // structured: random blocks, all partial so the predicate decides (plus a few full ones)
      const double x = u(rng);
      states[i] = x < c.density ? kBlockPartial : x < c.density + 0.1 ? kBlockFull : kBlockAbsent;
    }
  }
  std::vector<int32_t> perm;
  if (c.perm != "none") {
    const int rows = c.perm == "shared" ? 1 : c.NH;
    perm.resize(static_cast<size_t>(rows * c.L));
    for (int r = 0; r < rows; ++r) {
      auto b = perm.begin() + r * c.L;
      std::iota(b, b + c.L, 0);
      std::shuffle(b, b + c.L, rng);
    }
    pred.original_order = c.layout == "frame_band";  // exercise both index spaces
  }
  auto lay = layout_from_block_states(states, lh, c.NH, c.L, c.block, pred, perm);
  EXPECT_TRUE(lay.is_ok()) << lay.status().to_string();
  return std::move(lay).value();
}

void run_case(const Case& c) {
  SCOPED_TRACE(c.repro());
  std::mt19937 rng(c.seed);
  const size_t n = static_cast<size_t>(c.L) * c.NH * c.HD;
  const auto q = randn(n, rng, 1.0f), k = randn(n, rng, 1.0f), v = randn(n, rng, 1.0f);
  const BlockLayout lay = make_case_layout(c, rng);
  std::vector<float> rho, res;
  SparseEpilogue epi;
  if (c.epilogue) {
    std::uniform_real_distribution<float> u(0.2f, 1.0f);
    rho.resize(static_cast<size_t>(c.NH * c.L));
    for (auto& r : rho) r = u(rng);
    res = randn(n, rng, 0.3f);
    epi.rho = rho.data();
    epi.residual = res.data();
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.HD));
  std::vector<float> out(n, NAN), lse(static_cast<size_t>(c.NH * c.L), NAN);
  std::vector<float> ref(n), ref_lse(static_cast<size_t>(c.NH * c.L));
  ASSERT_TRUE(block_sparse_attention_cpu(out.data(), lse.data(), lay, q.data(), k.data(), v.data(), c.L, c.NH, c.HD,
                                         scale, epi)
                  .is_ok());
  ASSERT_TRUE(block_sparse_attention_reference(ref.data(), ref_lse.data(), lay, q.data(), k.data(), v.data(), c.L,
                                               c.NH, c.HD, scale, epi)
                  .is_ok());
  const test::Diff d = test::compare(out.data(), ref.data(), static_cast<int64_t>(n));
  EXPECT_TRUE(d.finite) << "NaN/Inf or unwritten output element at index " << d.worst;
  EXPECT_LE(d.rel(), test::tol::kKernelVsReference)
      << c.repro() << ": out max|d|=" << d.max_abs << " rel=" << d.rel() << " worst index " << d.worst;
  const test::Diff dl = test::compare(lse.data(), ref_lse.data(), c.NH * c.L);
  EXPECT_TRUE(dl.finite) << c.repro() << ": lse not finite at " << dl.worst;
  EXPECT_LE(dl.max_abs, test::tol::kLseAbs) << c.repro() << ": lse worst index " << dl.worst;
}

TEST(BlockSparseKernel, RandomizedSweepMatchesDenseMaskedReference) {
  uint32_t seed = 1000;
  int cases = 0;
  for (int HD : {64, 128}) {
    for (int64_t L : {1, 77, 200, 333}) {
      for (int block : {64, 128}) {
        for (const char* layout : {"random", "band", "frame_band", "dense"}) {
          for (const char* perm : {"none", "shared", "per_head"}) {
            const bool head_shared = (seed % 2) == 0;
            const bool epilogue = (seed % 3) == 0;
            const double density = 0.15 + 0.1 * (seed % 7);
            if (std::string(layout) == "frame_band" && L < 40) continue;
            run_case({HD, L, 3, block, layout, perm, head_shared, epilogue, density, seed++});
            ++cases;
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 150);
}

TEST(BlockSparseKernel, LongerSequencesAndOddHeadDim) {
  run_case({128, 1000, 2, 128, "random", "per_head", false, true, 0.3, 7});
  run_case({64, 1111, 2, 64, "band", "none", true, false, 0.2, 8});
  run_case({72, 290, 2, 64, "random", "shared", false, false, 0.5, 9});  // PixArt head dim, padded to 80
}

TEST(DenseKernel, MatchesReference) {
  std::mt19937 rng(5);
  for (int HD : {64, 128}) {
    for (auto [Lq, Lk] : {std::pair<int64_t, int64_t>{130, 130}, {65, 300}, {257, 17}}) {
      const int NH = 2;
      const auto q = randn(static_cast<size_t>(Lq * NH * HD), rng, 1.f);
      const auto k = randn(static_cast<size_t>(Lk * NH * HD), rng, 1.f);
      const auto v = randn(static_cast<size_t>(Lk * NH * HD), rng, 1.f);
      std::vector<float> o(q.size(), NAN), r(q.size()), l(static_cast<size_t>(NH * Lq)), rl(l.size());
      const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
      dense_attention_cpu(o.data(), l.data(), q.data(), k.data(), v.data(), Lq, Lk, NH, HD, scale);
      dense_attention_reference(r.data(), rl.data(), q.data(), k.data(), v.data(), Lq, Lk, NH, HD, scale);
      const test::Diff d = test::compare(o.data(), r.data(), static_cast<int64_t>(o.size()));
      EXPECT_TRUE(d.finite);
      EXPECT_LE(d.rel(), test::tol::kKernelVsReference) << "dense(hd=" << HD << ", Lq=" << Lq << ", Lk=" << Lk << ")";
      EXPECT_LE(test::compare(l.data(), rl.data(), NH * Lq).max_abs, test::tol::kLseAbs);
    }
  }
}

TEST(BlockLayout, ValidationErrorsAreClear) {
  // Missing diagonal.
  BlockLayout lay = dense_layout(200, 2, 64);
  ASSERT_TRUE(lay.validate().is_ok());
  lay.full_idx.erase(lay.full_idx.begin());  // row 0 loses block 0
  for (size_t r = 1; r < lay.full_ptr.size(); ++r) lay.full_ptr[r] -= 1;
  Status s = lay.validate();
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("diagonal"), std::string::npos) << s.message();
  lay.ensure_diagonal();
  EXPECT_TRUE(lay.validate().is_ok());
  // Bad block size.
  EXPECT_FALSE(layout_from_block_states(std::vector<uint8_t>(4, 1), 1, 1, 100, 96).is_ok());
  // Bad permutation.
  BlockLayout p = dense_layout(10, 1, 64);
  p.perm = {0, 1, 2, 3, 4, 5, 6, 7, 8, 8};
  s = p.validate();
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("permutation"), std::string::npos) << s.message();
  // Layout/call mismatch.
  BlockLayout d = dense_layout(64, 1, 64);
  std::vector<float> x(64 * 2 * 64);
  s = block_sparse_attention_cpu(x.data(), nullptr, d, x.data(), x.data(), x.data(), 64, 2, 64, 1.f);
  EXPECT_FALSE(s.is_ok());
}

TEST(BlockLayout, DensityAndDiagonalForcing) {
  // 3x3 blocks, only off-diagonal block (0, 2) requested: the diagonal is added, giving 4 of 9.
  std::vector<uint8_t> st(9, kBlockAbsent);
  st[2] = kBlockFull;
  auto lay = layout_from_block_states(st, 1, 4, 3 * 64, 64);
  ASSERT_TRUE(lay.is_ok()) << lay.status().to_string();
  EXPECT_DOUBLE_EQ(lay->block_density(), 4.0 / 9.0);
  EXPECT_DOUBLE_EQ(lay->element_density(), 4.0 / 9.0);
  const auto m = lay->block_mask();
  EXPECT_EQ(m, (std::vector<uint8_t>{1, 0, 1, 0, 1, 0, 0, 0, 1}));
  // Tail: L = 130 with block 64 -> 3 blocks, last one 2 tokens; dense element density is exactly 1.
  EXPECT_DOUBLE_EQ(dense_layout(130, 1, 64).element_density(), 1.0);
}

}  // namespace
}  // namespace vdit::attn

namespace vdit::attn {
namespace {

// The flash row accepts kᵀ blocked [nb, HDp, B] (the kernels' packing) and plain [HDp, Lk_pad] (used by
// gathered kernels that pack themselves); both must give identical results.
TEST(FlashRow, BlockedAndPlainKeyLayoutsAgree) {
  const int B = 64, HD = 64, HDp = 64;
  const int64_t L = 150, Lp = 192;
  std::mt19937 rng(77);
  const auto x = randn(static_cast<size_t>(L * HD * 3), rng, 1.f);
  const float* q = x.data();
  const float* k = x.data() + L * HD;
  const float* v = x.data() + 2 * L * HD;
  std::vector<float> qp(Lp * HDp), ktb(Lp * HDp), ktp(Lp * HDp), vp(Lp * HDp);
  cpu::pack_head(qp.data(), q, nullptr, L, Lp, 1, HD, HDp, 0, 0.125f, false, B);
  cpu::pack_head(ktb.data(), k, nullptr, L, Lp, 1, HD, HDp, 0, 1.f, true, B);
  cpu::pack_head(vp.data(), v, nullptr, L, Lp, 1, HD, HDp, 0, 1.f, false, B);
  for (int64_t n = 0; n < L; ++n)
    for (int c = 0; c < HD; ++c) ktp[c * Lp + n] = k[n * HD + c];
  const cpu::PackedHead blocked{qp.data(), ktb.data(), vp.data(), L, L, Lp, HDp, true};
  const cpu::PackedHead plain{qp.data(), ktp.data(), vp.data(), L, L, Lp, HDp, false};
  cpu::FlashRow a(B, HDp), b(B, HDp);
  auto keep = [](int64_t i, int64_t j) { return (i + j) % 3 != 0; };
  for (int64_t q0 = 0; q0 < L; q0 += B) {
    a.begin(&blocked, q0);
    b.begin(&plain, q0);
    for (int64_t k0 = 0; k0 < L; k0 += B) {
      a.add(k0, k0 == 64, keep);
      b.add(k0, k0 == 64, keep);
    }
    std::vector<float> oa(HD), ob(HD);
    for (int i = 0; i < a.rows(); ++i) {
      EXPECT_EQ(a.finish_row(i, oa.data(), HD), b.finish_row(i, ob.data(), HD));
      EXPECT_EQ(oa, ob) << "row " << q0 + i;
    }
  }
}

}  // namespace
}  // namespace vdit::attn
