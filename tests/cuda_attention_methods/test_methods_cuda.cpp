// The sparse methods' GPU path (AttentionMethod::forward_device) against the same methods on the CPU, on
// seeded bf16-rounded inputs (tolerance in method_case.h): Radial (host layout uploaded once per shape),
// Re-ttention (ρ/R kept on the device across caching and sparse steps, per branch), DraftAttention (the
// device planner's map, thresholds and CSR lists against the host planner, then the output, on exactly tiling
// and on padded grids), PARO (a random plan file; per-(group, layer) uploads), dense schedule calls (cuDNN),
// and VMoBA's `unsupported` answer.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "attention/cuda/block_sparse_gathered.h"
#include "attention/cuda/planners/draft_device.h"
#include "attention/paro_plan.h"
#include "tests/cuda_attention_methods/method_case.h"

using namespace vdit;
using namespace vdit::attn;
using test::compare_call;
using vdit::test::MethodInputs;

namespace {

std::unique_ptr<AttentionMethod> make(const std::string& method, const nlohmann::json& cfg, const ModelInfo& info = {}) {
  auto m = make_attention(method, cfg, info);
  EXPECT_TRUE(m.is_ok()) << method << ": " << m.status().to_string();
  return m.is_ok() ? std::move(m).value() : nullptr;
}

std::string grid_str(VideoGrid g) {
  return strfmt("%lldx%lldx%lld", static_cast<long long>(g.f), static_cast<long long>(g.h), static_cast<long long>(g.w));
}

}  // namespace

TEST(MethodsCuda, RadialSparseAndDenseCalls) {
  for (VideoGrid grid : {VideoGrid{6, 16, 24}, VideoGrid{5, 13, 21}}) {
    for (int block : {128, 64}) {
      const nlohmann::json cfg = {{"preset", "none"}, {"decay", 0.2}, {"dense_steps", 1}, {"dense_layers", 1},
                                  {"block", block}};
      auto gpu = make("radial", cfg), cpu = make("radial", cfg);
      ASSERT_TRUE(gpu && cpu);
      std::vector<double> densities;
      gpu->set_stats_sink([&](const AttentionStats& s) { densities.push_back(s.density); });
      MethodInputs in;
      ASSERT_TRUE(test::make_inputs(&in, grid.tokens(), 2, 128, 11).is_ok());
      const std::string base = strfmt("radial(grid=%s, B=%d, NH=2, HD=128, bf16", grid_str(grid).c_str(), block);
      compare_call(*gpu, *cpu, test::make_call(grid, 1, 4, 3, 10), in, base + ", sparse call)");
      compare_call(*gpu, *cpu, test::make_call(grid, 2, 4, 4, 10), in, base + ", sparse call, cached layout)");
      compare_call(*gpu, *cpu, test::make_call(grid, 0, 4, 3, 10), in, base + ", dense layer)");
      compare_call(*gpu, *cpu, test::make_call(grid, 1, 4, 0, 10), in, base + ", dense step)");
      // The GPU call's density is the host layout's.
      auto host = cpu->plan_only(test::make_call(grid, 1, 4, 3, 10), QKV{nullptr, nullptr, nullptr, in.L, 2, 128});
      ASSERT_TRUE(host.is_ok() && *host);
      ASSERT_EQ(densities.size(), 4u);
      EXPECT_NEAR(densities[0], (*host)->block_density(), 1e-12);
      EXPECT_DOUBLE_EQ(densities[2], 1.0);
      std::printf("  radial %s B=%d: block density %.4f\n", grid_str(grid).c_str(), block, densities[0]);
    }
  }
}

TEST(MethodsCuda, RettentionCachingAndSparseSteps) {
  const VideoGrid grid{5, 16, 24};
  for (const nlohmann::json& band : {nlohmann::json{{"band", "frame"}, {"window_fraction", 0.125}},
                                     nlohmann::json{{"half_width", 300}}}) {
    nlohmann::json cfg = {{"preset", "none"}, {"full_steps", 1}, {"cache_every", 3}, {"lambda", 0.04}};
    for (auto it = band.begin(); it != band.end(); ++it) cfg[it.key()] = it.value();
    auto gpu = make("rettention", cfg), cpu = make("rettention", cfg);
    ASSERT_TRUE(gpu && cpu);
    // Steps 0 (full), 1 (caching), 2, 3 (sparse), 4 (caching), 5 (sparse); branch 1 first seen at step 2
    // (no cache yet: a caching step). Inputs change a little per step (the cache is taken from older data).
    MethodInputs base;
    ASSERT_TRUE(test::make_inputs(&base, grid.tokens(), 2, 128, 21).is_ok());
    for (int step = 0; step < 6; ++step) {
      for (int branch = 0; branch < (step >= 2 ? 2 : 1); ++branch) {
        MethodInputs in;
        ASSERT_TRUE(test::make_inputs(&in, grid.tokens(), 2, 128, 100 + step * 2 + branch).is_ok());
        // Mix: 0.9 · base + 0.1 · fresh, rounded to bf16 (close to the cached step, as along a trajectory).
        for (auto [b, f, bits] : {std::tuple{&base.q, &in.q, &in.qb}, std::tuple{&base.k, &in.k, &in.kb},
                                  std::tuple{&base.v, &in.v, &in.vb}}) {
          for (size_t i = 0; i < f->size(); ++i) {
            (*bits)[i] = f32_to_bf16(0.9f * (*b)[i] + 0.1f * (*f)[i]);
            (*f)[i] = bf16_to_f32((*bits)[i]);
          }
        }
        in.vmax = 0;
        for (float x : in.v) in.vmax = std::max(in.vmax, std::fabs(x));
        const size_t n = in.q.size() * 2;
        ASSERT_TRUE(in.dq.copy_from_host(in.qb.data(), n).is_ok());
        ASSERT_TRUE(in.dk.copy_from_host(in.kb.data(), n).is_ok());
        ASSERT_TRUE(in.dv.copy_from_host(in.vb.data(), n).is_ok());
        compare_call(*gpu, *cpu, test::make_call(grid, 0, 1, step, 10, branch), in,
                     strfmt("rettention(%s, grid=%s, step=%d, branch=%d)", band.dump().c_str(), grid_str(grid).c_str(),
                            step, branch));
      }
    }
    gpu->reset();
    cpu->reset();
  }
}

namespace {

// Device planner vs host planner on the same rounded inputs: map, thresholds, CSR lists (full lists = kept
// blocks without pad slots, part lists = kept blocks holding pads), launch order. Mismatched blocks are
// allowed only where the host map entry equals the threshold within 1e-6 (ties at the order statistic). On
// exactly tiling grids the expected lists are also the CPU method's own plan.
void check_draft_layout(VideoGrid grid, int NH, double sparsity, uint32_t seed, int64_t text = 0) {
  const std::string repro = strfmt("draft_layout(grid=%s, text=%lld, NH=%d, r=%g, seed=%u)", grid_str(grid).c_str(),
                                   static_cast<long long>(text), NH, sparsity, seed);
  MethodInputs in;
  ASSERT_TRUE(test::make_inputs(&in, grid.tokens() + text, NH, 128, seed).is_ok()) << repro;
  auto geo = draft_geometry(grid, text, false, 8, 16);
  ASSERT_TRUE(geo.is_ok()) << repro;
  const DraftMap host = draft_map(*geo, in.q.data(), in.k.data(), NH, 128, sparsity);
  DraftDevicePlanner dev;
  Status st = dev.prepare(*geo, NH, 128);
  ASSERT_TRUE(st.is_ok()) << repro << ": " << st.to_string();
  st = dev.plan(test::device_call(in), sparsity);
  ASSERT_TRUE(st.is_ok()) << repro << ": " << st.to_string();
  st = block_sparse_gathered_validate(test::device_call(in), dev.view());
  ASSERT_TRUE(st.is_ok()) << repro << ": the planned view is invalid: " << st.to_string();
  std::vector<float> map, thr;
  DraftDevicePlanner::Lists dl;
  st = dev.download(&map, &thr, &dl, nullptr);
  ASSERT_TRUE(st.is_ok()) << repro << ": " << st.to_string();
  double map_err = 0;
  for (size_t i = 0; i < map.size(); ++i) {
    map_err = std::max(map_err, std::fabs(double(map[i]) - host.map[i]) / std::max(1e-30, double(host.map[i])));
  }
  EXPECT_LE(map_err, 1e-6) << repro << ": draft map relative error";
  for (int h = 0; h < NH; ++h) {
    if (std::isinf(host.threshold[h])) {
      EXPECT_EQ(thr[h], host.threshold[h]) << repro << ": threshold of head " << h;
    } else {
      EXPECT_NEAR(thr[h], host.threshold[h], 1e-6 * std::fabs(host.threshold[h])) << repro << ": threshold of head " << h;
    }
  }
  const int64_t g = geo->g, B = geo->block, Lp = static_cast<int64_t>(geo->slots.size()), nb = (Lp + B - 1) / B;
  ASSERT_EQ(dev.num_blocks(), nb) << repro;
  std::vector<uint8_t> pad(static_cast<size_t>(nb), 0);
  for (int64_t n = 0; n < Lp; ++n)
    if (geo->slots[n] < 0) pad[n / B] = 1;
  auto host_kept = [&](int h, int64_t qb, int64_t kb) {
    return qb >= g || kb >= g || qb == kb || host.mask[(static_cast<size_t>(h) * g + qb) * g + kb] != 0;
  };
  // Exactly tiling grids: the expectation is the CPU method's layout.
  std::shared_ptr<const BlockLayout> hl;
  if (geo->aligned) {
    auto m = make("draft", {{"preset", "none"}, {"sparsity", sparsity}});
    ASSERT_TRUE(m);
    AttentionCall call = test::make_call(grid, 0, 1, 5, 10);
    call.text_len = text;
    auto lay = m->plan_only(call, QKV{in.q.data(), in.k.data(), in.v.data(), in.L, NH, 128});
    ASSERT_TRUE(lay.is_ok() && *lay) << repro << ": " << lay.status().to_string();
    hl = *lay;
    ASSERT_EQ(hl->num_q_blocks(), nb) << repro;
  }
  ASSERT_EQ(static_cast<int64_t>(dl.full_ptr.size()), NH * nb + 1) << repro;
  int64_t mismatched = 0, ties = 0, listed = 0, masked = 0;
  for (int h = 0; h < NH; ++h) {
    for (int64_t qb = 0; qb < nb; ++qb) {
      const int64_t dr = h * nb + qb;
      std::vector<uint8_t> want(static_cast<size_t>(nb), 0), got(static_cast<size_t>(nb), 0);
      for (int64_t kb = 0; kb < nb; ++kb) want[kb] = host_kept(h, qb, kb) ? 1 : 0;
      if (hl) {
        const int64_t r = hl->row(h, qb);
        std::vector<uint8_t> a(static_cast<size_t>(nb), 0);
        for (int64_t e = hl->full_ptr[r]; e < hl->full_ptr[r + 1]; ++e) a[hl->full_idx[e]] = 1;
        EXPECT_EQ(hl->part_ptr[r + 1] - hl->part_ptr[r], 0) << repro;
        EXPECT_TRUE(a == want) << repro << ": the CPU method's layout differs from its draft mask at row " << dr;
      }
      for (int pass = 0; pass < 2; ++pass) {
        const auto& ptr = pass == 0 ? dl.full_ptr : dl.part_ptr;
        const auto& idx = pass == 0 ? dl.full_idx : dl.part_idx;
        for (int64_t e = ptr[dr]; e < ptr[dr + 1]; ++e) {
          if (e > ptr[dr]) {
            EXPECT_LT(idx[e - 1], idx[e]) << repro << ": unsorted device row " << dr;
          }
          const int32_t kb = idx[e];
          EXPECT_EQ(pad[kb], pass == 1 ? 1 : 0) << repro << ": row " << dr << " lists block " << kb << " as "
                                                << (pass == 0 ? "full" : "part");
          got[kb] = 1;
          masked += pass;
        }
      }
      for (int64_t kb = 0; kb < nb; ++kb) {
        listed += got[kb];
        if (want[kb] == got[kb]) continue;
        const float v = host.map[(static_cast<size_t>(h) * g + qb) * g + kb];
        if (std::fabs(v - host.threshold[h]) <= 1e-6f * host.threshold[h]) {
          ++ties;
        } else {
          ++mismatched;
          if (mismatched < 5) {
            ADD_FAILURE() << repro << ": head " << h << " block (" << qb << ", " << kb << ") host " << int(want[kb])
                          << " device " << int(got[kb]) << " map " << v << " thr " << host.threshold[h];
          }
        }
      }
    }
  }
  EXPECT_EQ(mismatched, 0) << repro;
  // Launch order: per head, rows by list length descending, ties by query block (the host's work order).
  ASSERT_EQ(static_cast<int64_t>(dl.items.size()), NH * nb) << repro;
  for (int h = 0; h < NH; ++h) {
    std::vector<int32_t> want(static_cast<size_t>(nb));
    for (int64_t qb = 0; qb < nb; ++qb) want[qb] = static_cast<int32_t>(h * nb + qb);
    auto len = [&](int32_t it) { return dl.full_ptr[it + 1] - dl.full_ptr[it] + dl.part_ptr[it + 1] - dl.part_ptr[it]; };
    std::stable_sort(want.begin(), want.end(), [&](int32_t a, int32_t b) { return len(a) > len(b); });
    for (int64_t i = 0; i < nb; ++i) {
      if (dl.items[h * nb + i] != want[i]) {
        ADD_FAILURE() << repro << ": launch order of head " << h << " differs at position " << i;
        break;
      }
    }
  }
  auto dens = dev.block_density(nullptr);
  ASSERT_TRUE(dens.is_ok());
  std::printf("  %s: map rel err %.2e, %lld listed blocks (%lld masked), block density %.4f%s, tie flips %lld\n",
              repro.c_str(), map_err, static_cast<long long>(listed), static_cast<long long>(masked), *dens,
              hl ? strfmt(" (host %.4f)", hl->block_density()).c_str() : "", static_cast<long long>(ties));
}

}  // namespace

TEST(MethodsCuda, DraftDeviceLayoutMatchesHost) {
  check_draft_layout({6, 24, 48}, 2, 0.75, 31);
  check_draft_layout({3, 32, 32}, 3, 0.9, 32);
  check_draft_layout({4, 16, 64}, 1, 0.5, 33);
  // Grids the 8x16 pool does not tile: Wan 480p frames (30x52 → 4x4 regions, 7 of them padded), 720p rows
  // (45x80), a text tail.
  check_draft_layout({3, 30, 52}, 2, 0.75, 34);
  check_draft_layout({2, 45, 80}, 3, 0.75, 35, 77);
  check_draft_layout({5, 20, 40}, 2, 0.0, 36);  // keep everything
  check_draft_layout({2, 20, 40}, 2, 1.0, 37);  // only the forced blocks
}

TEST(MethodsCuda, DraftOutputs) {
  const nlohmann::json cfg = {{"preset", "none"}, {"sparsity", 0.75}, {"dense_layers", 1}};
  // The aligned grid of the earlier rounds, then padded grids (Wan 480p frames 30x52; 20x40 with text).
  struct G {
    VideoGrid grid;
    int64_t text;
  };
  for (const G& gc : {G{{6, 24, 48}, 0}, G{{3, 30, 52}, 0}, G{{2, 20, 40}, 40}}) {
    auto gpu = make("draft", cfg), cpu = make("draft", cfg);
    ASSERT_TRUE(gpu && cpu);
    double dg = -1, dc = -1;
    gpu->set_stats_sink([&](const AttentionStats& s) { dg = s.density; });
    cpu->set_stats_sink([&](const AttentionStats& s) { dc = s.density; });
    for (uint32_t seed : {41u, 42u}) {
      MethodInputs in;
      ASSERT_TRUE(test::make_inputs(&in, gc.grid.tokens() + gc.text, 2, 128, seed).is_ok());
      AttentionCall call = test::make_call(gc.grid, 1, 2, 5, 10);
      call.text_len = gc.text;
      compare_call(*gpu, *cpu, call, in,
                   strfmt("draft(grid=%s, text=%lld, r=0.75, NH=2, seed=%u)", grid_str(gc.grid).c_str(),
                          static_cast<long long>(gc.text), seed));
      EXPECT_NEAR(dg, dc, 1e-3 * dc) << "draft density, grid " << grid_str(gc.grid);
      std::printf("    density gpu %.5f cpu %.5f\n", dg, dc);
    }
  }
  auto gpu = make("draft", cfg), cpu = make("draft", cfg);
  ASSERT_TRUE(gpu && cpu);
  MethodInputs in;
  ASSERT_TRUE(test::make_inputs(&in, VideoGrid{3, 30, 52}.tokens(), 2, 128, 43).is_ok());
  compare_call(*gpu, *cpu, test::make_call({3, 30, 52}, 0, 2, 5, 10), in, "draft(dense layer 0)");
}

TEST(MethodsCuda, ParoPlanLayouts) {
  ParoPlan plan;
  plan.groups = 2;
  plan.layers = 2;
  plan.heads = 2;
  plan.block = 64;
  plan.grid = {4, 16, 24};
  plan.nq = plan.grid.tokens() / 64;
  plan.steps = 10;
  plan.order = {0, 3, 5, 1};
  auto mask = Tensor::zeros(DType::u8, {2, 2, 2, plan.nq, plan.nq});
  ASSERT_TRUE(mask.is_ok());
  std::mt19937 rng(7);
  std::bernoulli_distribution on(0.3);
  for (int64_t i = 0; i < mask->numel(); ++i) mask->data<uint8_t>()[i] = on(rng) ? 1 : 0;
  plan.block_mask = *mask;
  const std::string path = (std::filesystem::temp_directory_path() / "vdit_planners_paro_plan.safetensors").string();
  ASSERT_TRUE(save_paro_plan(path, plan).is_ok());
  ModelInfo info;
  info.num_layers = 2;
  info.num_heads = 2;
  const nlohmann::json cfg = {{"plan", path}};
  auto gpu = make("paro", cfg, info), cpu = make("paro", cfg, info);
  ASSERT_TRUE(gpu && cpu);
  MethodInputs in;
  ASSERT_TRUE(test::make_inputs(&in, plan.grid.tokens(), 2, 128, 51).is_ok());
  for (int step : {0, 7, 8}) {
    for (int layer : {0, 1}) {
      compare_call(*gpu, *cpu, test::make_call(plan.grid, layer, 2, step, 10), in,
                   strfmt("paro(grid=4x16x24, B=64, step=%d, layer=%d)", step, layer));
    }
  }
  std::filesystem::remove(path);
}

