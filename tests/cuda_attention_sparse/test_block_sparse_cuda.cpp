// The block-sparse CUDA kernel against the CPU references (sparse_case.h): random per-head and shared
// layouts at several densities, lengths that are not block multiples, diagonal-only rows, partial blocks
// with band / frame_band predicates (also on original indices under a permutation), shared and per-head
// permutations, the Re-ttention epilogue, LSE, density 1 against the dense CPU kernel, layouts from the
// real planners, and the errors the call returns. Empty kept sets cannot be built (every validated layout
// keeps the diagonal element), so that branch of the contract is not exercised here.
#include <gtest/gtest.h>

#include <cstdio>
#include <numeric>

#include "attention/cuda/block_sparse_bench_data.h"
#include "attention/methods/method.h"
#include "tests/cuda_attention_sparse/sparse_case.h"

using namespace vdit;
using namespace vdit::attn;
using vdit::test::SparseCase;

namespace {

// Block states with exactly round(density·nB) listed blocks per row (the diagonal included), a share of
// them marked partial.
std::vector<uint8_t> random_states(int list_heads, int64_t nb, double density, double partial_share,
                                   std::mt19937& rng) {
  const int64_t per_row = std::clamp<int64_t>(std::llround(density * nb), 1, nb);
  std::vector<uint8_t> st(static_cast<size_t>(list_heads * nb * nb), kBlockAbsent);
  std::vector<int64_t> others;
  std::uniform_real_distribution<double> ud(0, 1);
  for (int h = 0; h < list_heads; ++h) {
    for (int64_t qb = 0; qb < nb; ++qb) {
      uint8_t* row = st.data() + (h * nb + qb) * nb;
      others.resize(static_cast<size_t>(nb));
      std::iota(others.begin(), others.end(), 0);
      others.erase(others.begin() + qb);
      std::shuffle(others.begin(), others.end(), rng);
      row[qb] = ud(rng) < partial_share ? kBlockPartial : kBlockFull;
      for (int64_t i = 0; i + 1 < per_row; ++i) {
        row[others[static_cast<size_t>(i)]] = ud(rng) < partial_share ? kBlockPartial : kBlockFull;
      }
    }
  }
  return st;
}

std::vector<int32_t> random_perm(int64_t L, int rows, std::mt19937& rng) {
  std::vector<int32_t> p(static_cast<size_t>(L * rows));
  for (int r = 0; r < rows; ++r) {
    auto b = p.begin() + r * L;
    std::iota(b, b + L, 0);
    std::shuffle(b, b + L, rng);
  }
  return p;
}

enum class Perm { none, shared, per_head };

SparseCase random_case(int HD, DeviceDType dt, int block, int64_t L, double density, bool shared, Perm perm,
                       uint32_t seed, ElementPredicate pred = {}, double partial_share = 0) {
  SparseCase c;
  c.HD = HD;
  c.NH = 2;
  c.dtype = dt;
  c.seed = seed;
  std::mt19937 rng(seed * 7919u + 3);
  const int64_t nb = (L + block - 1) / block;
  const int lh = shared ? 1 : c.NH;
  std::vector<int32_t> p = perm == Perm::none ? std::vector<int32_t>{}
                                              : random_perm(L, perm == Perm::shared ? 1 : c.NH, rng);
  auto lay = layout_from_block_states(random_states(lh, nb, density, partial_share, rng), lh, c.NH, L, block, pred,
                                      std::move(p));
  EXPECT_TRUE(lay.is_ok()) << lay.status().to_string();
  if (lay.is_ok()) c.layout = std::move(lay).value();
  c.layout_desc = strfmt("random(d=%g, %s%s)", density, shared ? "shared" : "per-head",
                         partial_share > 0 ? strfmt(", partial %g", partial_share).c_str() : "");
  return c;
}

const DeviceDType kTypes[] = {DeviceDType::bf16, DeviceDType::f16};

}  // namespace

TEST(BlockSparseCuda, RandomLayoutsAllInstances) {
  uint32_t seed = 1;
  for (int HD : {64, 128}) {
    for (DeviceDType dt : kTypes) {
      for (int block : {64, 128}) {
        SparseCase a = random_case(HD, dt, block, 4129, 0.25, false, Perm::none, seed++);
        vdit::test::run_sparse_case(a);
        SparseCase b = random_case(HD, dt, block, 1000, 0.5, true, Perm::shared, seed++);
        b.lse = false;
        vdit::test::run_sparse_case(b);
        SparseCase c = random_case(HD, dt, block, 2000, 0.125, false, Perm::per_head, seed++);
        c.rho = c.residual = true;
        vdit::test::run_sparse_case(c);
      }
    }
  }
}

TEST(BlockSparseCuda, DiagonalOnlyRows) {
  uint32_t seed = 100;
  for (int block : {64, 128}) {
    for (int HD : {64, 128}) {
      SparseCase c = random_case(HD, HD == 64 ? DeviceDType::f16 : DeviceDType::bf16, block, 1000, 0.0, false,
                                 Perm::none, seed++);
      c.layout_desc = "diagonal only";
      vdit::test::run_sparse_case(c);
    }
  }
}

TEST(BlockSparseCuda, PartialBlocksBand) {
  uint32_t seed = 200;
  for (int block : {64, 128}) {
    ElementPredicate band;
    band.kind = ElementPredicate::Kind::band;
    band.half_width = 70;
    band.video_end = 1900;  // tokens [1900, 2000) are text: unrestricted
    SparseCase c = random_case(128, DeviceDType::bf16, block, 2000, 0.3, false, Perm::none, seed++, band, 0.5);
    vdit::test::run_sparse_case(c);
    SparseCase d = random_case(64, DeviceDType::f16, block, 1111, 0.4, true, Perm::shared, seed++, band, 0.7);
    d.rho = true;
    vdit::test::run_sparse_case(d);
  }
}

TEST(BlockSparseCuda, PartialBlocksFrameBandAndOriginalOrder) {
  uint32_t seed = 300;
  for (int block : {64, 128}) {
    ElementPredicate fb;
    fb.kind = ElementPredicate::Kind::frame_band;
    fb.frame_tokens = 300;
    fb.half_width = 40;
    fb.video_begin = 33;  // text first
    SparseCase c = random_case(128, DeviceDType::bf16, block, 1833, 0.35, false, Perm::none, seed++, fb, 0.6);
    vdit::test::run_sparse_case(c);
    ElementPredicate ob = fb;
    ob.original_order = true;
    SparseCase d = random_case(128, DeviceDType::f16, block, 1833, 0.35, false, Perm::per_head, seed++, ob, 0.6);
    d.residual = true;
    vdit::test::run_sparse_case(d);
    ElementPredicate bo;
    bo.kind = ElementPredicate::Kind::band;
    bo.half_width = 200;
    bo.original_order = true;
    SparseCase e = random_case(64, DeviceDType::bf16, block, 1500, 0.5, true, Perm::shared, seed++, bo, 1.0);
    vdit::test::run_sparse_case(e);
  }
}

TEST(BlockSparseCuda, DensityOneMatchesDenseCpuKernel) {
  uint32_t seed = 400;
  for (int HD : {64, 128}) {
    for (int block : {64, 128}) {
      SparseCase c;
      c.HD = HD;
      c.NH = 3;
      c.dtype = block == 64 ? DeviceDType::f16 : DeviceDType::bf16;
      c.seed = seed++;
      c.layout = dense_layout(1537, c.NH, block);
      c.layout_desc = "dense";
      c.dense_cpu_ref = true;
      vdit::test::run_sparse_case(c);
    }
  }
}

namespace {

// A planner's layout for `grid` (+ text) with NH heads, HD, planned from small random q/k/v.
Result<BlockLayout> planned_layout(const std::string& method, const nlohmann::json& cfg, VideoGrid grid, int NH,
                                   int HD, int64_t text = 0) {
  VDIT_ASSIGN(auto m, make_attention(method, cfg, ModelInfo{}));
  AttentionCall call;
  call.grid = grid;
  call.text_len = text;
  const int64_t L = grid.tokens() + text;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> q(static_cast<size_t>(L) * NH * HD), k(q.size()), v(q.size());
  for (auto* x : {&q, &k, &v}) {
    for (auto& e : *x) e = nd(rng);
  }
  QKV in{q.data(), k.data(), v.data(), L, NH, HD};
  VDIT_ASSIGN(auto lay, m->plan_only(call, in));
  if (!lay) return internal_error(method + " planned a dense call");
  return *lay;
}

}  // namespace

TEST(BlockSparseCuda, PlannerLayouts) {
  struct P {
    std::string method;
    nlohmann::json cfg;
    VideoGrid grid;
    int64_t text;
    int HD;
    DeviceDType dt;
  };
  const std::vector<P> cases = {
      {"radial", {{"preset", "none"}, {"decay", 0.2}}, {6, 16, 24}, 0, 128, DeviceDType::bf16},
      {"radial", {{"preset", "none"}, {"block", 64}, {"sink", false}}, {5, 14, 22}, 0, 64, DeviceDType::f16},
      {"rettention", {{"preset", "none"}, {"full_steps", 0}, {"band", "frame"}, {"window_fraction", 0.1}},
       {4, 12, 20}, 33, 128, DeviceDType::bf16},
      {"rettention", {{"preset", "none"}, {"full_steps", 0}, {"half_width", 150}, {"block", 64}}, {4, 12, 20}, 0, 64,
       DeviceDType::bf16},
      {"draft", {{"preset", "none"}, {"pool", {8, 16}}, {"sparsity", 0.75}}, {3, 16, 32}, 0, 128, DeviceDType::bf16},
  };
  uint32_t seed = 500;
  for (const P& p : cases) {
    auto lay = planned_layout(p.method, p.cfg, p.grid, 2, p.HD, p.text);
    ASSERT_TRUE(lay.is_ok()) << p.method << ": " << lay.status().to_string();
    SparseCase c;
    c.HD = p.HD;
    c.NH = 2;
    c.dtype = p.dt;
    c.seed = seed++;
    c.layout = std::move(lay).value();
    c.layout_desc = strfmt("%s(grid %lldx%lldx%lld, text %lld, d=%.3f)", p.method.c_str(),
                           static_cast<long long>(p.grid.f), static_cast<long long>(p.grid.h),
                           static_cast<long long>(p.grid.w), static_cast<long long>(p.text), c.layout.block_density());
    c.rho = p.method == "rettention";
    c.residual = p.method == "rettention";
    vdit::test::run_sparse_case(c);
  }
}

TEST(BlockSparseCuda, WorkOrderIsHeadMajorLongestFirst) {
  const int64_t L = 3000, nb = (L + 127) / 128;
  // Rows of different lengths (row qb of head h lists ((7·qb + h) mod nB) + 1 blocks, plus the diagonal).
  std::vector<uint8_t> st(static_cast<size_t>(3 * nb * nb), kBlockAbsent);
  for (int h = 0; h < 3; ++h) {
    for (int64_t qb = 0; qb < nb; ++qb) {
      for (int64_t kb = 0; kb <= (qb * 7 + h) % nb; ++kb) st[static_cast<size_t>((h * nb + qb) * nb + kb)] = kBlockFull;
    }
  }
  auto lay2 = layout_from_block_states(st, 3, 3, L, 128);
  ASSERT_TRUE(lay2.is_ok());
  const auto order = block_sparse_work_order(*lay2);
  ASSERT_EQ(static_cast<int64_t>(order.size()), 3 * nb);
  auto len = [&](int32_t item) {
    const int64_t r = item;  // per-head layout: row = item
    return (lay2->full_ptr[r + 1] - lay2->full_ptr[r]) + (lay2->part_ptr[r + 1] - lay2->part_ptr[r]);
  };
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(order[i] / nb, static_cast<int64_t>(i) / nb) << "not head-major at " << i;
    if (i % nb != 0) {
      EXPECT_GE(len(order[i - 1]), len(order[i])) << "not longest-first at " << i;
    }
  }
}

TEST(BlockSparseCuda, ErrorsAreStatuses) {
  const BlockLayout lay = dense_layout(300, 2, 64);
  auto dl = DeviceBlockLayout::upload(lay);
  ASSERT_TRUE(dl.is_ok()) << dl.status().to_string();
  auto buf = DeviceBuffer::allocate(300 * 2 * 128 * 2);
  ASSERT_TRUE(buf.is_ok());
  DeviceQKV call;
  call.q = call.k = call.v = buf->data();
  call.out = buf->data();
  call.L = 300;
  call.NH = 2;
  call.HD = 128;
  EXPECT_TRUE(block_sparse_attention_cuda(call, *dl).is_ok());
  DeviceQKV bad = call;
  bad.L = 301;
  EXPECT_EQ(block_sparse_attention_cuda(bad, *dl).code(), StatusCode::invalid_argument);
  bad = call;
  bad.HD = 96;
  EXPECT_EQ(block_sparse_attention_cuda(bad, *dl).code(), StatusCode::unsupported);
  bad = call;
  bad.Lk = 200;
  EXPECT_EQ(block_sparse_attention_cuda(bad, *dl).code(), StatusCode::unsupported);
  bad = call;
  bad.out = nullptr;
  EXPECT_EQ(block_sparse_attention_cuda(bad, *dl).code(), StatusCode::invalid_argument);
  bad = call;
  bad.q = static_cast<const char*>(call.q) + 2;
  EXPECT_EQ(block_sparse_attention_cuda(bad, *dl).code(), StatusCode::invalid_argument);
  EXPECT_EQ(block_sparse_attention_cuda(call, DeviceBlockLayout()).code(), StatusCode::invalid_argument);
  BlockLayout broken = lay;
  broken.full_idx[0] = 99;  // out of range
  EXPECT_FALSE(DeviceBlockLayout::upload(broken).is_ok());
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

TEST(BlockSparseCuda, BenchDataMatchesHost) {
  for (DeviceDType dt : kTypes) {
    const int64_t n = 100003;
    auto buf = DeviceBuffer::allocate(static_cast<size_t>(n) * 2);
    ASSERT_TRUE(buf.is_ok());
    ASSERT_TRUE(fill_bench_data(buf->data(), dt, n, 1234, 1.0f, nullptr).is_ok());
    std::vector<uint16_t> got(static_cast<size_t>(n));
    ASSERT_TRUE(buf->copy_to_host(got.data(), got.size() * 2).is_ok());
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(got[static_cast<size_t>(i)], vdit::test::to_io(bench_uniform(1234, static_cast<uint64_t>(i), 1.0f), dt))
          << "element " << i;
    }
  }
}

TEST(BlockSparseCuda, MainLoopsAvailable) {
  // The mma.sync loop always exists; the wgmma loop only in builds with sm_90a device code.
  std::printf("wgmma main loop: %s\n", block_sparse_wgmma_available() ? "compiled (sm_90a)" : "not compiled");
  if (!block_sparse_wgmma_available()) {
    const BlockLayout lay = dense_layout(300, 2, 64);
    auto dl = DeviceBlockLayout::upload(lay);
    ASSERT_TRUE(dl.is_ok());
    auto buf = DeviceBuffer::allocate(300 * 2 * 128 * 2);
    ASSERT_TRUE(buf.is_ok());
    DeviceQKV call;
    call.q = call.k = call.v = buf->data();
    call.out = buf->data();
    call.L = 300;
    call.NH = 2;
    call.HD = 128;
    BlockSparseOptions opts;
    opts.loop = BlockSparseLoop::wgmma;
    EXPECT_EQ(block_sparse_attention_cuda(call, *dl, {}, opts).code(), StatusCode::unsupported);
  }
}
