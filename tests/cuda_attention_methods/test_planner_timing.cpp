// Planning time against the attention time it plans, at the Wan2.1 shapes (NH 12, HD 128, bf16, device-filled
// random inputs), printed, not asserted: Radial (first call = host plan + upload; later calls reuse it),
// Re-ttention (the per-step ρ update beside the band kernel), DraftAttention (the device planner vs the
// gathered block-sparse kernel on its lists, on any grid: Wan 480p and 720p frames are padded to whole
// 8x16 regions). Runs only with VDIT_PLANNER_TIMING=1.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "attention/cuda/block_sparse_gathered.h"
#include "attention/cuda/planners/draft_device.h"
#include "attention/cuda/planners/rettention_device.h"
#include "tests/cuda_attention_methods/device_fill.h"
#include "tests/cuda_attention_methods/method_case.h"

using namespace vdit;
using namespace vdit::attn;
using test::time_ms;

namespace {

struct TimingShape {
  const char* name;
  VideoGrid grid;
};

}  // namespace

TEST(Timing, PlanningVsAttention) {
  if (!std::getenv("VDIT_PLANNER_TIMING")) GTEST_SKIP() << "set VDIT_PLANNER_TIMING=1";
  const int NH = 12, HD = 128;
  const TimingShape shapes[] = {{"wan480p", {21, 30, 52}}, {"wan720p", {21, 45, 80}}, {"512x768", {21, 32, 48}},
                          {"768x1280", {21, 48, 80}}};
  for (const TimingShape& s : shapes) {
    const int64_t L = s.grid.tokens(), n = L * NH * HD;
    auto q = DeviceBuffer::allocate(n * 2), k = DeviceBuffer::allocate(n * 2), v = DeviceBuffer::allocate(n * 2),
         o = DeviceBuffer::allocate(n * 2);
    ASSERT_TRUE(q && k && v && o);
    ASSERT_EQ(planners_fill_16(q->data(), n, 1, 1.f, true), 0);
    ASSERT_EQ(planners_fill_16(k->data(), n, 2, 1.f, true), 0);
    ASSERT_EQ(planners_fill_16(v->data(), n, 3, 1.f, true), 0);
    DeviceQKV qkv;
    qkv.q = q->data(), qkv.k = k->data(), qkv.v = v->data(), qkv.out = o->data();
    qkv.L = L, qkv.NH = NH, qkv.HD = HD, qkv.dtype = DeviceDType::bf16;
    const AttentionCall call = test::make_call(s.grid, 1, 30, 30, 50);
    std::printf("[%s] grid %lldx%lldx%lld L=%lld NH=%d HD=%d\n", s.name, (long long)s.grid.f, (long long)s.grid.h,
                (long long)s.grid.w, (long long)L, NH, HD);

    auto dense = make_attention("dense", nullptr, ModelInfo{});
    ASSERT_TRUE(dense.is_ok());
    const double t_dense = time_ms([&] { return (*dense)->forward_device(call, qkv); }, 5);
    std::printf("  dense cuDNN SDPA: %.3f ms\n", t_dense);

    // Radial: the first call plans on the host and uploads; later calls only run the kernel.
    {
      auto m = make_attention("radial", {{"preset", "none"}, {"decay", 0.2}}, ModelInfo{});
      ASSERT_TRUE(m.is_ok());
      double density = 0;
      (*m)->set_stats_sink([&](const AttentionStats& st) { density = st.density; });
      const auto t0 = std::chrono::steady_clock::now();
      Status st = (*m)->forward_device(call, qkv);
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      const double first = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      (*m)->set_stats_sink(nullptr);
      const double t = time_ms([&] { return (*m)->forward_device(call, qkv); }, 5);
      std::printf("  radial: density %.4f, first call %.3f ms (host plan + upload, once per shape), then %.3f ms per "
                  "call (planning 0 ms = 0%%), %.2fx vs dense\n",
                  density, first, t, t_dense / t);
    }

    // Re-ttention: the caching step, then sparse steps (band kernel + ρ/R epilogue + ρ update).
    {
      auto m = make_attention("rettention", {{"preset", "none"}, {"full_steps", 0}, {"cache_every", 1000}},
                              ModelInfo{});
      ASSERT_TRUE(m.is_ok());
      const auto t0 = std::chrono::steady_clock::now();
      Status st = (*m)->forward_device(call, qkv);  // step 30 with no cache: caching step
      cudaDeviceSynchronize();
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      const double caching = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      AttentionCall sparse = call;
      sparse.step = 31;
      double density = 0;
      (*m)->set_stats_sink([&](const AttentionStats& s2) { density = s2.density; });
      ASSERT_TRUE((*m)->forward_device(sparse, qkv).is_ok());
      (*m)->set_stats_sink(nullptr);
      const double t = time_ms([&] { return (*m)->forward_device(sparse, qkv); }, 5);
      auto rho = DeviceBuffer::allocate(static_cast<size_t>(L) * NH * 4);
      ASSERT_TRUE(rho.is_ok());
      const double t_rho = time_ms([&] { return rettention_rho_step(rho->as<float>(), L * NH, 0.04f, true, nullptr); }, 20);
      std::printf("  rettention: density %.4f, caching step %.3f ms (first, incl. upload and cache allocation), sparse "
                  "step %.3f ms, of which the rho update %.4f ms (%.2f%%), %.2fx vs dense\n",
                  density, caching, t, t_rho, 100.0 * t_rho / t, t_dense / t);
    }

    // Draft: the device planner vs the kernel on its layout.
    {
      auto geo = draft_geometry(s.grid, 0, false, 8, 16);
      ASSERT_TRUE(geo.is_ok());
      DraftDevicePlanner dev;
      Status st = dev.prepare(*geo, NH, HD);
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      const double t_plan = time_ms([&] { return dev.plan(qkv, 0.75); }, 10);
      auto density = dev.block_density(nullptr);
      ASSERT_TRUE(density.is_ok());
      const double t_attn = time_ms([&] { return block_sparse_gathered_cuda(qkv, dev.view()); }, 5);
      std::printf("  draft: %lld regions%s, %lld positions, block density %.4f, planning %.3f ms, attention %.3f ms: "
                  "planning = %.2f%% of the attention (target <= 3%%); plan+attention %.2fx vs dense\n",
                  (long long)dev.regions(), geo->aligned ? "" : " (padded)", (long long)dev.positions(), *density,
                  t_plan, t_attn, 100.0 * t_plan / t_attn, t_dense / (t_plan + t_attn));
      auto prof = dev.profile(qkv, 0.75, 10);
      ASSERT_TRUE(prof.is_ok()) << prof.status().to_string();
      std::printf("  draft planning stages (ms):");
      for (const auto& [stage, ms] : *prof) std::printf(" %s %.4f", stage.c_str(), ms);
      std::printf("\n");
      auto m = make_attention("draft", {{"preset", "none"}, {"sparsity", 0.75}}, ModelInfo{});
      ASSERT_TRUE(m.is_ok());
      const double t_m = time_ms([&] { return (*m)->forward_device(call, qkv); }, 5);
      std::printf("  draft forward_device (plan + attention): %.3f ms\n", t_m);
    }
  }
}

// DraftAttention at the Wan2.1 model shapes (1.3B 480p: 12 heads; 14B 720p: 40 heads; both grids padded to
// whole 8x16 regions), and on an exactly tiling grid the gathered kernel against block_sparse_attention_cuda
// on the same lists (a BlockLayout built from them): the gathered call must cost what the layout call
// costs. Printed, not asserted. Runs only with VDIT_PLANNER_TIMING=1.
TEST(Timing, DraftWanShapes) {
  if (!std::getenv("VDIT_PLANNER_TIMING")) GTEST_SKIP() << "set VDIT_PLANNER_TIMING=1";
  struct Shape {
    const char* name;
    VideoGrid grid;
    int NH;
  };
  const int HD = 128;
  for (const Shape& s : {Shape{"wan1.3b-480p", {21, 30, 52}, 12}, Shape{"wan14b-720p", {21, 45, 80}, 40},
                         Shape{"aligned-512x768", {21, 32, 48}, 12}}) {
    const int64_t L = s.grid.tokens(), n = L * s.NH * HD;
    auto q = DeviceBuffer::allocate(n * 2), k = DeviceBuffer::allocate(n * 2), v = DeviceBuffer::allocate(n * 2),
         o = DeviceBuffer::allocate(n * 2);
    ASSERT_TRUE(q && k && v && o);
    ASSERT_EQ(planners_fill_16(q->data(), n, 11, 1.f, true), 0);
    ASSERT_EQ(planners_fill_16(k->data(), n, 12, 1.f, true), 0);
    ASSERT_EQ(planners_fill_16(v->data(), n, 13, 1.f, true), 0);
    DeviceQKV qkv;
    qkv.q = q->data(), qkv.k = k->data(), qkv.v = v->data(), qkv.out = o->data();
    qkv.L = L, qkv.NH = s.NH, qkv.HD = HD, qkv.dtype = DeviceDType::bf16;
    auto geo = draft_geometry(s.grid, 0, false, 8, 16);
    ASSERT_TRUE(geo.is_ok());
    DraftDevicePlanner dev;
    Status st = dev.prepare(*geo, s.NH, HD);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    const double t_plan = time_ms([&] { return dev.plan(qkv, 0.75); }, 10);
    auto density = dev.block_density(nullptr);
    ASSERT_TRUE(density.is_ok());
    const double t_attn = time_ms([&] { return block_sparse_gathered_cuda(qkv, dev.view()); }, 5);
    std::printf("[%s] grid %lldx%lldx%lld L=%lld NH=%d: draft %lld regions%s, %lld positions, block density %.4f, "
                "planning %.3f ms, attention %.3f ms: planning = %.2f%% of the attention (target <= 3%%)\n",
                s.name, (long long)s.grid.f, (long long)s.grid.h, (long long)s.grid.w, (long long)L, s.NH,
                (long long)dev.regions(), geo->aligned ? "" : " (padded)", (long long)dev.positions(), *density, t_plan,
                t_attn, 100.0 * t_plan / t_attn);
    auto prof = dev.profile(qkv, 0.75, 10);
    ASSERT_TRUE(prof.is_ok()) << prof.status().to_string();
    std::printf("  planning stages (ms):");
    for (const auto& [stage, ms] : *prof) std::printf(" %s %.4f", stage.c_str(), ms);
    std::printf("\n");
    for (BlockSparseLoop loop : {BlockSparseLoop::mma_sync, BlockSparseLoop::wgmma}) {
      if (loop == BlockSparseLoop::wgmma && !block_sparse_wgmma_available()) continue;
      BlockSparseOptions opts;
      opts.loop = loop;
      const double t = time_ms([&] { return block_sparse_gathered_cuda(qkv, dev.view(), opts); }, 5);
      std::printf("  gathered kernel, %s loop: %.3f ms", loop == BlockSparseLoop::wgmma ? "wgmma" : "mma.sync", t);
      if (geo->aligned) {  // the same lists as a BlockLayout through block_sparse_attention_cuda
        DraftDevicePlanner::Lists l;
        ASSERT_TRUE(dev.download(nullptr, nullptr, &l, nullptr).is_ok());
        const int64_t nb = dev.num_blocks();
        std::vector<uint8_t> states(static_cast<size_t>(s.NH * nb * nb), kBlockAbsent);
        for (int64_t r = 0; r < s.NH * nb; ++r)
          for (int64_t e = l.full_ptr[r]; e < l.full_ptr[r + 1]; ++e) states[r * nb + l.full_idx[e]] = kBlockFull;
        auto lay = layout_from_block_states(states, s.NH, s.NH, L, 128, {}, geo->slots);
        ASSERT_TRUE(lay.is_ok()) << lay.status().to_string();
        auto dl = DeviceBlockLayout::upload(*lay);
        ASSERT_TRUE(dl.is_ok()) << dl.status().to_string();
        const double tl = time_ms([&] { return block_sparse_attention_cuda(qkv, *dl, {}, opts); }, 5);
        std::printf(", block_sparse_attention_cuda on the same lists %.3f ms (gathered/layout %.3f)", tl, t / tl);
      }
      std::printf("\n");
    }
  }
}
