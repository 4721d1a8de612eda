// The sparse methods' GPU path (AttentionMethod::forward_device) against the same methods on the CPU, on
// seeded bf16-rounded inputs (tolerance in method_case.h): Radial (host layout uploaded once per shape),
// Re-ttention (ρ/R kept on the device across caching and sparse steps, per branch), DraftAttention (the
// device planner's map, thresholds and CSR lists against the host planner, then the output), PARO (a random
// plan file; per-(group, layer) uploads), dense schedule calls (cuDNN), and the `unsupported` answers
// (VMoBA, Draft on padded grids).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "attention/cuda/planners/draft_device.h"
#include "attention/paro_plan.h"
#include "tests/cuda_attention_methods/method_case.h"

using namespace vdit;
using namespace vdit::attn;
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

// One call on both devices; returns the worst err/bound ratio.
double compare_call(AttentionMethod& gpu, AttentionMethod& cpu, const AttentionCall& call, const MethodInputs& in,
                    const std::string& repro) {
  auto g = test::run_gpu(gpu, call, in);
  EXPECT_TRUE(g.is_ok()) << repro << ": " << g.status().to_string();
  auto c = test::run_cpu(cpu, call, in);
  EXPECT_TRUE(c.is_ok()) << repro << ": " << c.status().to_string();
  if (!g.is_ok() || !c.is_ok()) return INFINITY;
  const double r = test::expect_outputs_close(*g, *c, in, repro);
  std::printf("  %-70s worst err/bound %.3f\n", repro.c_str(), r);
  return r;
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

// Device planner vs host planner on the same rounded inputs: map, thresholds, CSR lists. Mismatched blocks
// are allowed only where the host map entry equals the threshold within 1e-6 (ties at the order statistic).
void check_draft_layout(VideoGrid grid, int NH, double sparsity, uint32_t seed) {
  const std::string repro = strfmt("draft_layout(grid=%s, NH=%d, r=%g, seed=%u)", grid_str(grid).c_str(), NH,
                                   sparsity, seed);
  MethodInputs in;
  ASSERT_TRUE(test::make_inputs(&in, grid.tokens(), NH, 128, seed).is_ok()) << repro;
  auto geo = draft_geometry(grid, 0, false, 8, 16);
  ASSERT_TRUE(geo.is_ok()) << repro;
  const DraftMap host = draft_map(*geo, in.q.data(), in.k.data(), NH, 128, sparsity);
  DraftDevicePlanner dev;
  ASSERT_TRUE(dev.prepare(*geo, NH, 128).is_ok()) << repro;
  Status st = dev.plan(test::device_call(in), sparsity);
  ASSERT_TRUE(st.is_ok()) << repro << ": " << st.to_string();
  std::vector<float> map, thr;
  std::vector<int64_t> ptr;
  std::vector<int32_t> idx;
  st = dev.download(&map, &thr, &ptr, &idx, nullptr);
  ASSERT_TRUE(st.is_ok()) << repro << ": " << st.to_string();
  double map_err = 0;
  for (size_t i = 0; i < map.size(); ++i) {
    map_err = std::max(map_err, std::fabs(double(map[i]) - host.map[i]) / std::max(1e-30, double(host.map[i])));
  }
  EXPECT_LE(map_err, 1e-6) << repro << ": draft map relative error";
  for (int h = 0; h < NH; ++h) {
    EXPECT_NEAR(thr[h], host.threshold[h], 1e-6 * std::fabs(host.threshold[h])) << repro << ": threshold of head " << h;
  }
  // Host lists: the CPU method's plan.
  auto m = make("draft", {{"preset", "none"}, {"sparsity", sparsity}});
  ASSERT_TRUE(m);
  auto lay = m->plan_only(test::make_call(grid, 0, 1, 5, 10), QKV{in.q.data(), in.k.data(), in.v.data(), in.L, NH, 128});
  ASSERT_TRUE(lay.is_ok() && *lay) << repro << ": " << lay.status().to_string();
  const BlockLayout& hl = **lay;
  const int64_t nb = hl.num_q_blocks(), g = geo->g;
  ASSERT_EQ(static_cast<int64_t>(ptr.size()), NH * nb + 1) << repro;
  int64_t mismatched = 0, ties = 0, listed = 0;
  for (int h = 0; h < NH; ++h) {
    for (int64_t qb = 0; qb < nb; ++qb) {
      const int64_t r = hl.row(h, qb);
      std::vector<uint8_t> a(static_cast<size_t>(nb), 0), b(static_cast<size_t>(nb), 0);
      for (int64_t e = hl.full_ptr[r]; e < hl.full_ptr[r + 1]; ++e) a[hl.full_idx[e]] = 1;
      EXPECT_EQ(hl.part_ptr[r + 1] - hl.part_ptr[r], 0) << repro;
      const int64_t dr = h * nb + qb;
      for (int64_t e = ptr[dr]; e < ptr[dr + 1]; ++e) {
        if (e > ptr[dr]) {
          EXPECT_LT(idx[e - 1], idx[e]) << repro << ": unsorted device row " << dr;
        }
        b[idx[e]] = 1;
      }
      for (int64_t kb = 0; kb < nb; ++kb) {
        listed += b[kb];
        if (a[kb] == b[kb]) continue;
        const float v = host.map[(static_cast<size_t>(h) * g + qb) * g + kb];
        if (std::fabs(v - host.threshold[h]) <= 1e-6f * host.threshold[h]) {
          ++ties;
        } else {
          ++mismatched;
          if (mismatched < 5) {
            ADD_FAILURE() << repro << ": head " << h << " block (" << qb << ", " << kb << ") host " << int(a[kb])
                          << " device " << int(b[kb]) << " map " << v << " thr " << host.threshold[h];
          }
        }
      }
    }
  }
  EXPECT_EQ(mismatched, 0) << repro;
  // Launch order: per head, rows by list length descending, ties by query block (the host's work order).
  std::vector<int32_t> items(static_cast<size_t>(NH * nb));
  ASSERT_EQ(cudaMemcpy(items.data(), dev.layout().items(), items.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int h = 0; h < NH; ++h) {
    std::vector<int32_t> want(static_cast<size_t>(nb));
    for (int64_t qb = 0; qb < nb; ++qb) want[qb] = static_cast<int32_t>(h * nb + qb);
    auto len = [&](int32_t it) { return ptr[it + 1] - ptr[it]; };
    std::stable_sort(want.begin(), want.end(), [&](int32_t a, int32_t b) { return len(a) > len(b); });
    for (int64_t i = 0; i < nb; ++i) {
      if (items[h * nb + i] != want[i]) {
        ADD_FAILURE() << repro << ": launch order of head " << h << " differs at position " << i;
        break;
      }
    }
  }
  auto dens = dev.block_density(nullptr);
  ASSERT_TRUE(dens.is_ok());
  std::printf("  %s: map rel err %.2e, %lld listed blocks, density %.4f (host %.4f), tie flips %lld\n",
              repro.c_str(), map_err, static_cast<long long>(listed), *dens, hl.block_density(),
              static_cast<long long>(ties));
}

}  // namespace

TEST(MethodsCuda, DraftDeviceLayoutMatchesHost) {
  check_draft_layout({6, 24, 48}, 2, 0.75, 31);
  check_draft_layout({3, 32, 32}, 3, 0.9, 32);
  check_draft_layout({4, 16, 64}, 1, 0.5, 33);
}

TEST(MethodsCuda, DraftOutputs) {
  const VideoGrid grid{6, 24, 48};
  const nlohmann::json cfg = {{"preset", "none"}, {"sparsity", 0.75}, {"dense_layers", 1}};
  auto gpu = make("draft", cfg), cpu = make("draft", cfg);
  ASSERT_TRUE(gpu && cpu);
  for (uint32_t seed : {41u, 42u}) {
    MethodInputs in;
    ASSERT_TRUE(test::make_inputs(&in, grid.tokens(), 2, 128, seed).is_ok());
    compare_call(*gpu, *cpu, test::make_call(grid, 1, 2, 5, 10), in,
                 strfmt("draft(grid=%s, r=0.75, NH=2, seed=%u)", grid_str(grid).c_str(), seed));
  }
  MethodInputs in;
  ASSERT_TRUE(test::make_inputs(&in, grid.tokens(), 2, 128, 43).is_ok());
  compare_call(*gpu, *cpu, test::make_call(grid, 0, 2, 5, 10), in, "draft(dense layer 0)");
  // A grid the 8x16 pool does not tile: the GPU path says so.
  const VideoGrid padded{2, 20, 40};
  MethodInputs pin;
  ASSERT_TRUE(test::make_inputs(&pin, padded.tokens(), 2, 128, 44).is_ok());
  Status st = gpu->forward_device(test::make_call(padded, 1, 2, 5, 10), test::device_call(pin));
  EXPECT_EQ(st.code(), StatusCode::unsupported) << st.to_string();
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

TEST(MethodsCuda, VmobaHasNoGpuPath) {
  auto m = make("vmoba", nullptr);
  ASSERT_TRUE(m);
  const VideoGrid grid{3, 10, 26};
  MethodInputs in;
  ASSERT_TRUE(test::make_inputs(&in, grid.tokens(), 2, 128, 61).is_ok());
  Status st = m->forward_device(test::make_call(grid, 1, 3, 40, 50), test::device_call(in));
  EXPECT_EQ(st.code(), StatusCode::unsupported) << st.to_string();
  std::printf("  vmoba forward_device: %s\n", st.to_string().c_str());
}
