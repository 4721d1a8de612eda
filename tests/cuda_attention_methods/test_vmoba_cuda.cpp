// VMoBA's GPU path against the CPU method on seeded bf16-rounded inputs (tolerance in method_case.h):
//  * the device planner (vmoba_device.h) against the host planner (vmoba_select.h): key means, the selected
//    chunks of every (head, query) (flips allowed only at near-ties of the gates), and the CSR lists, the
//    launch order and the kept count rebuilt on the host from the device's selection;
//  * forward_device against forward for the three layer types (1D/2D/3D partitions) on grids whose chunks are
//    not block multiples, top-k from the shorter (top) and the longer (bottom) register list, self only and
//    all chunks, HD 128 and 64; the reported density; dense steps and the `unsupported` answers;
//  * (VDIT_PLANNER_TIMING=1) planning time against the gathered kernel's time at the Wan2.1 480p/720p shapes,
//    on random q/k and (480p) on q/k smooth over the grid, a proxy for a trained model's correlated queries.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "attention/cuda/block_sparse_gathered.h"
#include "attention/cuda/planners/vmoba_device.h"
#include "attention/methods/vmoba_select.h"
#include "tests/cuda_attention_methods/device_fill.h"
#include "tests/cuda_attention_methods/method_case.h"
#include "tests/cuda_attention_methods/smooth_fill.h"

using namespace vdit;
using namespace vdit::attn;
using test::compare_call;
using test::time_ms;
using vdit::test::MethodInputs;

namespace {

constexpr int64_t kWhole = int64_t{1} << 40;  // "the whole axis" in a chunk box

std::string grid_str(VideoGrid g) {
  return strfmt("%lldx%lldx%lld", static_cast<long long>(g.f), static_cast<long long>(g.h),
                static_cast<long long>(g.w));
}

std::string box_str(const std::array<int64_t, 3>& b) {
  auto one = [](int64_t v) { return v >= kWhole ? std::string("*") : std::to_string(v); };
  return one(b[0]) + "x" + one(b[1]) + "x" + one(b[2]);
}

std::unique_ptr<AttentionMethod> make(const nlohmann::json& cfg, const ModelInfo& info = {}) {
  auto m = make_attention("vmoba", cfg, info);
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  return m.is_ok() ? std::move(m).value() : nullptr;
}

// The device planner against the host planner on one partition.
void check_planner(VideoGrid grid, const std::array<int64_t, 3>& box, int topk, int NH, int HD, int block,
                   uint32_t seed) {
  const std::string repro = strfmt("vmoba_plan(grid=%s, box=%s, topk=%d, NH=%d, HD=%d, B=%d, seed=%u)",
                                   grid_str(grid).c_str(), box_str(box).c_str(), topk, NH, HD, block, seed);
  MethodInputs in;
  ASSERT_TRUE(test::make_inputs(&in, grid.tokens(), NH, HD, seed).is_ok()) << repro;
  auto hp = vmoba_partition(grid, box);
  ASSERT_TRUE(hp.is_ok()) << repro;
  auto part = std::make_shared<const VmobaPartition>(std::move(hp).value());
  const int64_t L = in.L;
  const int C = part->num_chunks();
  const VmobaGates gates = vmoba_gates(*part, in.q.data(), in.k.data(), L, NH, HD);
  VmobaSelection rule;
  rule.topk = topk;
  const std::vector<uint8_t> sel = vmoba_select(*part, gates, rule);  // [C, NH, L]

  VmobaDevicePlanner dev;
  Status st = dev.plan(test::device_call(in), part, block, topk);
  ASSERT_TRUE(st.is_ok()) << repro << ": " << st.to_string();
  auto got = dev.download(nullptr);
  ASSERT_TRUE(got.is_ok()) << repro << ": " << got.status().to_string();
  const VmobaDevicePlan& p = *got;
  ASSERT_EQ(p.C, C) << repro;
  ASSERT_EQ(p.words, (C + 31) / 32) << repro;
  const int W = p.words;

  // Key means: double sums of the same 16-bit values, divided and rounded once: equal to the host's.
  double mean_err = 0;
  for (size_t i = 0; i < p.key_mean.size(); ++i) {
    const double h = gates.key_gate_weight[i];
    mean_err = std::max(mean_err, std::fabs(p.key_mean[i] - h) / std::max(1e-30, std::fabs(h)));
  }
  EXPECT_LE(mean_err, 1e-7) << repro << ": chunk-mean relative error";

  // Selection: exactly min(topk, C) chunks per row, the self chunk among them; a chunk may differ from the
  // host's only where its gate ties the row's k-th largest other gate within 1e-5 of Σ|k̄||q| (the device
  // accumulates the gate in f32, the host in double).
  const int want = std::min(topk, C), k_other = want - 1;
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  auto bit = [&](int h, int64_t n, int c) { return (p.select[(h * L + n) * W + c / 32] >> (c % 32)) & 1u; };
  auto gate = [&](int h, int c, int64_t n) { return gates.gate[(static_cast<size_t>(h) * C + c) * L + n]; };
  int64_t flips = 0, bad = 0, bad_count = 0;
  for (int h = 0; h < NH; ++h) {
    for (int64_t n = 0; n < L; ++n) {
      int count = 0;
      bool differs = false;
      for (int c = 0; c < C; ++c) {
        count += static_cast<int>(bit(h, n, c));
        differs = differs || bit(h, n, c) != sel[(static_cast<size_t>(c) * NH + h) * L + n];
      }
      if (count != want || !bit(h, n, part->chunk_of[n])) {
        if (++bad_count < 4) {
          ADD_FAILURE() << repro << ": head " << h << " query " << n << " selects " << count << " chunks";
        }
      }
      if (!differs) continue;
      std::vector<float> others;
      double scale = 0;
      const float* qr = in.q.data() + part->perm[n] * ld + h * HD;
      for (int c = 0; c < C; ++c) {
        if (c != part->chunk_of[n]) others.push_back(gate(h, c, n));
        const float* km = gates.key_gate_weight.data() + (static_cast<size_t>(c) * NH + h) * HD;
        double s = 0;
        for (int d = 0; d < HD; ++d) s += std::fabs(static_cast<double>(km[d]) * qr[d]);
        scale = std::max(scale, s);
      }
      std::sort(others.begin(), others.end(), std::greater<float>());
      const double kth = k_other > 0 ? others[k_other - 1] : 0.0;
      for (int c = 0; c < C; ++c) {
        if (bit(h, n, c) == sel[(static_cast<size_t>(c) * NH + h) * L + n]) continue;
        if (std::fabs(gate(h, c, n) - kth) <= 1e-5 * scale) {
          ++flips;
        } else if (++bad < 4) {
          ADD_FAILURE() << repro << ": head " << h << " query " << n << " chunk " << c << " device "
                        << bit(h, n, c) << " host " << int(sel[(static_cast<size_t>(c) * NH + h) * L + n]) << " gate "
                        << gate(h, c, n) << " k-th other " << kth;
        }
      }
    }
  }
  EXPECT_EQ(bad, 0) << repro << ": selection differs from the host away from ties";
  EXPECT_EQ(bad_count, 0) << repro;

  // Lists, order and kept count, rebuilt from the device selection with the CPU method's rule.
  const int64_t B = block, nb = (L + B - 1) / B, rows = NH * nb;
  ASSERT_EQ(static_cast<int64_t>(p.full_ptr.size()), rows + 1) << repro;
  ASSERT_EQ(static_cast<int64_t>(p.part_ptr.size()), rows + 1) << repro;
  int64_t list_errors = 0, listed = 0;
  uint64_t kept = 0;
  std::vector<int64_t> row_len(static_cast<size_t>(rows));
  for (int h = 0; h < NH; ++h) {
    for (int64_t qb = 0; qb < nb; ++qb) {
      const int64_t q0 = qb * B, nq = std::min(B, L - q0);
      std::vector<int64_t> count(static_cast<size_t>(C), 0);
      for (int64_t n = q0; n < q0 + nq; ++n)
        for (int c = 0; c < C; ++c) {
          count[c] += bit(h, n, c);
          if (bit(h, n, c)) kept += static_cast<uint64_t>(part->cu_chunk[c + 1] - part->cu_chunk[c]);
        }
      std::vector<int32_t> want_full, want_part;
      for (int64_t kb = 0; kb < nb; ++kb) {
        const int c0 = part->chunk_of[kb * B], c1 = part->chunk_of[std::min(L, (kb + 1) * B) - 1];
        bool any = false, all = true;
        for (int c = c0; c <= c1; ++c) {
          any = any || count[c] > 0;
          all = all && count[c] == nq;
        }
        const bool tail = L % B != 0 && kb == nb - 1;
        if (any && all && !tail) want_full.push_back(static_cast<int32_t>(kb));
        if (any && !(all && !tail)) want_part.push_back(static_cast<int32_t>(kb));
      }
      const int64_t r = h * nb + qb;
      const std::vector<int32_t> got_full(p.full_idx.begin() + p.full_ptr[r], p.full_idx.begin() + p.full_ptr[r + 1]);
      const std::vector<int32_t> got_part(p.part_idx.begin() + p.part_ptr[r], p.part_idx.begin() + p.part_ptr[r + 1]);
      if (got_full != want_full || got_part != want_part) {
        if (++list_errors < 4) {
          ADD_FAILURE() << repro << ": lists of head " << h << " query block " << qb << ": full " << got_full.size()
                        << " (want " << want_full.size() << "), partial " << got_part.size() << " (want "
                        << want_part.size() << ")";
        }
      }
      const bool diag = std::find(got_full.begin(), got_full.end(), qb) != got_full.end() ||
                        std::find(got_part.begin(), got_part.end(), qb) != got_part.end();
      EXPECT_TRUE(diag) << repro << ": head " << h << " query block " << qb << " does not list its diagonal block";
      row_len[r] = static_cast<int64_t>(got_full.size() + got_part.size());
      listed += row_len[r];
    }
  }
  EXPECT_EQ(list_errors, 0) << repro;
  EXPECT_EQ(p.kept, kept) << repro << ": kept key count";
  ASSERT_EQ(static_cast<int64_t>(p.items.size()), rows) << repro;
  for (int h = 0; h < NH; ++h) {
    std::vector<int32_t> order(static_cast<size_t>(nb));
    for (int64_t qb = 0; qb < nb; ++qb) order[qb] = static_cast<int32_t>(h * nb + qb);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row_len[a] > row_len[b]; });
    EXPECT_TRUE(std::equal(order.begin(), order.end(), p.items.begin() + h * nb))
        << repro << ": launch order of head " << h;
  }
  auto ed = dev.element_density(nullptr);
  auto bd = dev.block_density(nullptr);
  ASSERT_TRUE(ed.is_ok() && bd.is_ok()) << repro;
  EXPECT_NEAR(*bd, static_cast<double>(listed) / (static_cast<double>(rows) * nb), 1e-12) << repro;
  // The gathered kernel's own check of the lists (sorted, disjoint, in range, slots a permutation).
  st = block_sparse_gathered_validate(test::device_call(in), dev.view());
  EXPECT_TRUE(st.is_ok()) << repro << ": " << st.to_string();
  std::printf("  %-78s C=%d, mean rel err %.1e, tie flips %lld, element density %.4f, block density %.4f\n",
              repro.c_str(), C, mean_err, static_cast<long long>(flips), *ed, *bd);
}

}  // namespace

TEST(VmobaCuda, PlannerMatchesHost) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no GPU";
  const VideoGrid g{6, 10, 26};  // 1560 tokens: chunks of 520 / 126 / 130 tokens, none a block multiple
  for (int block : {64, 128}) {
    check_planner(g, {2, kWhole, kWhole}, 2, 2, 128, block, 71);  // 1D, 3 chunks
    check_planner(g, {kWhole, 3, 7}, 4, 2, 128, block, 72);       // 2D, 16 chunks, top list
    check_planner(g, {2, 5, 13}, 5, 2, 128, block, 73);           // 3D, 12 chunks
  }
  check_planner(g, {kWhole, 3, 7}, 12, 3, 64, 64, 74);   // bottom list (11 of 15 others), HD 64
  check_planner(g, {2, 5, 13}, 1, 2, 128, 64, 75);       // self only
  check_planner(g, {2, 5, 13}, 40, 2, 128, 128, 76);     // all chunks (k clamped)
}

TEST(VmobaCuda, PlannerAtWan480p) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no GPU";
  // The preset's 3D partition (72 chunks, k = 18: the 24-entry list) and 2D (24 chunks, k = 6).
  check_planner({21, 30, 52}, {7, 5, 13}, 18, 2, 128, 64, 81);
  check_planner({21, 30, 52}, {kWhole, 5, 13}, 6, 1, 128, 128, 82);
}

TEST(VmobaCuda, OutputsMatchCpu) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no GPU";
  const VideoGrid grid{6, 10, 26};
  const nlohmann::json chunks = {{"1d", 2}, {"2d", {3, 7}}, {"3d", {2, 5, 13}}};
  struct Case {
    std::vector<int> topk;
    int NH, HD, block;
    const char* what;
  };
  const Case cases[] = {{{2, 4, 5}, 2, 128, 128, "top lists"},
                        {{2, 4, 5}, 2, 128, 64, "top lists, block 64"},
                        {{3, 12, 11}, 2, 128, 128, "all chunks (1D), bottom lists"},
                        {{1, 1, 1}, 2, 128, 64, "self chunks only, block 64"},
                        {{2, 6, 3}, 3, 64, 128, "HD 64"}};
  for (const Case& cs : cases) {
    const nlohmann::json cfg = {{"preset", "none"}, {"chunks", chunks}, {"topk", cs.topk}, {"dense_steps", 1},
                                {"block", cs.block}};
    auto gpu = make(cfg), cpu = make(cfg);
    ASSERT_TRUE(gpu && cpu);
    double gpu_density = -1, cpu_density = -2;
    gpu->set_stats_sink([&](const AttentionStats& s) { gpu_density = s.density; });
    cpu->set_stats_sink([&](const AttentionStats& s) { cpu_density = s.density; });
    for (int layer = 0; layer < 3; ++layer) {
      MethodInputs in;
      ASSERT_TRUE(test::make_inputs(&in, grid.tokens(), cs.NH, cs.HD, 90 + layer).is_ok());
      const std::string repro =
          strfmt("vmoba(grid=%s, chunks=%s, topk=%d, layer=%d (%dD), NH=%d, HD=%d, B=%d, bf16; %s)",
                 grid_str(grid).c_str(), chunks.dump().c_str(), cs.topk[layer], layer, layer + 1, cs.NH, cs.HD,
                 cs.block, cs.what);
      compare_call(*gpu, *cpu, test::make_call(grid, layer, 3, 5, 10), in, repro);
      EXPECT_NEAR(gpu_density, cpu_density, 1e-12) << repro << ": reported density";
    }
  }
}

TEST(VmobaCuda, DenseStepsAndUnsupported) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no GPU";
  const VideoGrid grid{3, 10, 26};
  MethodInputs in;
  ASSERT_TRUE(test::make_inputs(&in, grid.tokens(), 2, 128, 95).is_ok());
  // Preset: the first 25% of the steps run dense (cuDNN on the GPU).
  auto gpu = make(nullptr), cpu = make(nullptr);
  ASSERT_TRUE(gpu && cpu);
  compare_call(*gpu, *cpu, test::make_call(grid, 1, 3, 2, 50), in, "vmoba(preset, step 2 of 50: dense)");
  compare_call(*gpu, *cpu, test::make_call(grid, 2, 3, 40, 50), in, "vmoba(preset, grid 3x10x26, step 40 of 50)");
  // The threshold rule and the head_global pool are CPU only.
  for (const nlohmann::json& cfg : {nlohmann::json{{"select", "threshold"}}, nlohmann::json{{"pool", "head_global"}}}) {
    auto m = make(cfg);
    ASSERT_TRUE(m);
    Status st = m->forward_device(test::make_call(grid, 1, 3, 40, 50), test::device_call(in));
    EXPECT_EQ(st.code(), StatusCode::unsupported) << cfg.dump() << ": " << st.to_string();
    std::printf("  vmoba %s on the GPU: %s\n", cfg.dump().c_str(), st.to_string().c_str());
  }
  // More chunks than the 128 the selection mask holds.
  auto many = make({{"preset", "none"}, {"chunks", {{"3d", {1, 2, 2}}}}});
  ASSERT_TRUE(many);
  Status st = many->forward_device(test::make_call(grid, 2, 3, 40, 50), test::device_call(in));
  EXPECT_EQ(st.code(), StatusCode::unsupported) << st.to_string();
  std::printf("  vmoba with 195 chunks on the GPU: %s\n", st.to_string().c_str());
}

namespace {

// One timing shape: q/k random (device_fill.h) or smooth over the grid (smooth_fill.h); v random.
struct TimingShape {
  const char* name;
  VideoGrid grid;
  int NH;
  bool smooth;
};

void time_shape(const TimingShape& s) {
  const int HD = 128;
  const int64_t L = s.grid.tokens(), n = L * s.NH * HD;
  auto q = DeviceBuffer::allocate(n * 2), k = DeviceBuffer::allocate(n * 2), v = DeviceBuffer::allocate(n * 2),
       o = DeviceBuffer::allocate(n * 2);
  ASSERT_TRUE(q && k && v && o);
  if (s.smooth) {
    ASSERT_EQ(planners_fill_smooth_bf16(q->data(), s.grid.f, s.grid.h, s.grid.w, s.NH, HD, 1, 0.5f), 0);
    ASSERT_EQ(planners_fill_smooth_bf16(k->data(), s.grid.f, s.grid.h, s.grid.w, s.NH, HD, 2, 0.5f), 0);
  } else {
    ASSERT_EQ(planners_fill_16(q->data(), n, 1, 1.f, true), 0);
    ASSERT_EQ(planners_fill_16(k->data(), n, 2, 1.f, true), 0);
  }
  ASSERT_EQ(planners_fill_16(v->data(), n, 3, 1.f, true), 0);
  DeviceQKV qkv;
  qkv.q = q->data(), qkv.k = k->data(), qkv.v = v->data(), qkv.out = o->data();
  qkv.L = L, qkv.NH = s.NH, qkv.HD = HD, qkv.dtype = DeviceDType::bf16;
  const int reps = s.NH > 12 ? 2 : 5;
  std::printf("[%s] grid %s L=%lld NH=%d HD=%d, q/k %s\n", s.name, grid_str(s.grid).c_str(), (long long)L, s.NH, HD,
              s.smooth ? "smooth over the grid (sin of position + noise 0.5)" : "uniform random");
  auto dense = make_attention("dense", nullptr, ModelInfo{});
  ASSERT_TRUE(dense.is_ok());
  const AttentionCall call0 = test::make_call(s.grid, 0, 30, 30, 50);
  const double t_dense = time_ms([&] { return (*dense)->forward_device(call0, qkv); }, reps);
  std::printf("  dense cuDNN SDPA: %.3f ms\n", t_dense);

  ModelInfo info;
  info.grid = s.grid;
  info.num_heads = s.NH;
  info.num_layers = 30;
  auto m = make_attention("vmoba", nullptr, info);
  ASSERT_TRUE(m.is_ok());
  const nlohmann::json desc = (*m)->describe();
  const nlohmann::json& ch = desc["chunks"];
  const std::array<std::array<int64_t, 3>, 3> boxes = {
      {{ch["1d"].get<int64_t>(), kWhole, kWhole},
       {kWhole, ch["2d"][0].get<int64_t>(), ch["2d"][1].get<int64_t>()},
       {ch["3d"][0].get<int64_t>(), ch["3d"][1].get<int64_t>(), ch["3d"][2].get<int64_t>()}}};
  const std::vector<int> topk = desc["topk"].get<std::vector<int>>();
  for (int kind = 0; kind < 3; ++kind) {
    auto hp = vmoba_partition(s.grid, boxes[kind]);
    ASSERT_TRUE(hp.is_ok());
    auto part = std::make_shared<const VmobaPartition>(std::move(hp).value());
    for (int block : {64, 128}) {
      VmobaDevicePlanner dev;
      const double t_plan = time_ms([&] { return dev.plan(qkv, part, block, topk[kind]); }, reps);
      auto ed = dev.element_density(nullptr);
      auto bd = dev.block_density(nullptr);
      ASSERT_TRUE(ed.is_ok() && bd.is_ok());
      const double t_attn = time_ms([&] { return block_sparse_gathered_cuda(qkv, dev.view()); }, reps);
      std::printf("  %dD %s (%d chunks, k=%d), B=%d: element density %.4f, block density %.4f; planning %.3f ms, "
                  "gathered attention %.3f ms: planning = %.2f%% of the attention (target <= 3%%); plan+attention "
                  "%.2fx vs dense\n",
                  kind + 1, box_str(boxes[kind]).c_str(), part->num_chunks(), topk[kind], block, *ed, *bd, t_plan,
                  t_attn, 100.0 * t_plan / t_attn, t_dense / (t_plan + t_attn));
      // The share if the kernel's time fell to the element density (ideal lists).
      std::printf("    if the attention ran at the element density (time x %.3f): planning = %.2f%%\n", *ed / *bd,
                  100.0 * t_plan / (t_attn * *ed / *bd));
      if (block == 128 && !s.smooth) {
        auto prof = dev.profile(qkv, part, block, topk[kind], reps);
        ASSERT_TRUE(prof.is_ok()) << prof.status().to_string();
        std::printf("    stages (ms): key means %.4f, gates + top-k %.4f, counts + order %.4f, scan + fill %.4f\n",
                    (*prof)[0], (*prof)[1], (*prof)[2], (*prof)[3]);
      }
    }
    if (s.smooth) continue;
    const AttentionCall call = test::make_call(s.grid, kind, 30, 30, 50);
    double density = 0;
    (*m)->set_stats_sink([&](const AttentionStats& st) { density = st.density; });
    Status st = (*m)->forward_device(call, qkv);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    (*m)->set_stats_sink(nullptr);
    const double t_m = time_ms([&] { return (*m)->forward_device(call, qkv); }, reps);
    std::printf("  vmoba forward_device layer %d (preset, plan + attention): %.3f ms, density %.4f, %.2fx vs dense\n",
                kind, t_m, density, t_dense / t_m);
  }
}

}  // namespace

// Planning vs the gathered kernel at the Wan2.1 shapes with the preset partitions and k. Random q selects
// noise, so a query block's union of chunks is nearly all of them (block density ~1); the smooth pass is a
// proxy for a trained model's correlated neighbours.
TEST(VmobaTiming, PlanningVsAttention) {
  if (!std::getenv("VDIT_PLANNER_TIMING")) GTEST_SKIP() << "set VDIT_PLANNER_TIMING=1";
  if (cuda_device_count() == 0) GTEST_SKIP() << "no GPU";
  for (const TimingShape& s : {TimingShape{"wan480p", {21, 30, 52}, 12, false},
                               TimingShape{"wan720p", {21, 45, 80}, 40, false},
                               TimingShape{"wan480p", {21, 30, 52}, 12, true}}) {
    time_shape(s);
    if (HasFatalFailure()) return;
  }
}
