// `vdit bench attention`: times the block-sparse CUDA kernel on a layout (dense, random per-head lists at
// given densities, or a planner's layout) after validating it on a slice against the CPU rows reference,
// next to cuDNN dense SDPA and our own kernel at density 1 measured in the same run. Inputs are
// deterministic uniform(-1, 1) values rotated over 3 buffer sets (L2 does not flatter); times are medians
// of --iters CUDA-event-timed calls after 2 warm-ups. It does not time permutation passes or planning.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "attention/block_layout.h"
#include "attention/cuda/block_sparse_bench_data.h"
#include "attention/cuda/block_sparse_cuda.h"
#include "attention/cuda/block_sparse_npz.h"
#include "attention/cuda/block_sparse_rows_reference.h"
#include "attention/cuda/cudnn_sdpa.h"
#include "attention/methods/method.h"
#include "dit/core/check_cuda.h"
#include "dit/core/dtype.h"
#include "dit/core/parallel.h"
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

using attn::BlockLayout;
using attn::DeviceDType;

struct Options {
  std::string method = "random";
  int heads = 12;
  int64_t seq = 32768;
  int head_dim = 128;
  std::vector<double> densities = {0.25};
  int block = 128;
  std::string dtype = "bf16";
  int iters = 10;
  std::string json_path;
  std::string save_layout;
  std::vector<int64_t> grid;
  std::string config;
  uint32_t seed = 1;
  bool no_cudnn = false;
  bool no_dense = false;
  std::string loop = "auto";
  std::string perm = "none";  // random lists: none | shared | per-head token permutation (gather cost)
};

constexpr int kSets = 3;  // rotated input sets

struct Inputs {
  DeviceBuffer q[kSets], k[kSets], v[kSets], out, lse;
  DeviceDType dtype = DeviceDType::bf16;
  int64_t L = 0;
  int NH = 0, HD = 0;
  attn::DeviceQKV call(int set) const {
    attn::DeviceQKV c;
    c.q = q[set].data();
    c.k = k[set].data();
    c.v = v[set].data();
    c.out = out.data();
    c.lse = lse.as<float>();
    c.L = L;
    c.NH = NH;
    c.HD = HD;
    c.dtype = dtype;
    return c;
  }
  static uint64_t seed_of(int set, int which) { return 1000 + 3 * static_cast<uint64_t>(set) + which; }
};

Result<Inputs> make_inputs(const Options& o, DeviceDType dt) {
  Inputs in;
  in.dtype = dt;
  in.L = o.seq;
  in.NH = o.heads;
  in.HD = o.head_dim;
  const int64_t n = o.seq * o.heads * o.head_dim;
  for (int s = 0; s < kSets; ++s) {
    DeviceBuffer* t[3] = {&in.q[s], &in.k[s], &in.v[s]};
    for (int w = 0; w < 3; ++w) {
      VDIT_ASSIGN(*t[w], DeviceBuffer::allocate(static_cast<size_t>(n) * 2));
      VDIT_TRY(attn::fill_bench_data(t[w]->data(), dt, n, Inputs::seed_of(s, w), 1.0f, nullptr));
    }
  }
  VDIT_ASSIGN(in.out, DeviceBuffer::allocate(static_cast<size_t>(n) * 2));
  VDIT_ASSIGN(in.lse, DeviceBuffer::allocate(static_cast<size_t>(o.heads) * o.seq * 4));
  VDIT_CHECK(cudaDeviceSynchronize());
  return in;
}

// Random per-head lists with exactly round(d·nB) blocks per row, the diagonal included (FlexAttention's
// peer builds the same kind).
Result<BlockLayout> random_layout(const Options& o, double d, std::mt19937& rng) {
  const int64_t nb = (o.seq + o.block - 1) / o.block;
  const int64_t per_row = std::clamp<int64_t>(std::llround(d * nb), 1, nb);
  std::vector<uint8_t> st(static_cast<size_t>(o.heads) * nb * nb, attn::kBlockAbsent);
  std::vector<int64_t> others;
  for (int h = 0; h < o.heads; ++h) {
    for (int64_t qb = 0; qb < nb; ++qb) {
      uint8_t* row = st.data() + (h * nb + qb) * nb;
      row[qb] = attn::kBlockFull;
      others.resize(static_cast<size_t>(nb));
      std::iota(others.begin(), others.end(), 0);
      others.erase(others.begin() + qb);
      std::shuffle(others.begin(), others.end(), rng);
      for (int64_t i = 0; i + 1 < per_row; ++i) row[others[static_cast<size_t>(i)]] = attn::kBlockFull;
    }
  }
  std::vector<int32_t> perm;
  if (o.perm != "none") {
    const int rows = o.perm == "shared" ? 1 : o.heads;
    perm.resize(static_cast<size_t>(o.seq) * rows);
    for (int r = 0; r < rows; ++r) {
      auto b = perm.begin() + static_cast<int64_t>(r) * o.seq;
      std::iota(b, b + o.seq, 0);
      std::shuffle(b, b + o.seq, rng);
    }
  }
  return attn::layout_from_block_states(st, o.heads, o.heads, o.seq, o.block, {}, std::move(perm));
}

// A planner's layout for the Wan grid of L tokens, planned on the CPU from deterministic random q/k.
Result<BlockLayout> planner_layout(const Options& o, double d, std::string* note) {
  attn::VideoGrid grid;
  if (o.grid.size() == 3) {
    grid = {o.grid[0], o.grid[1], o.grid[2]};
  } else if (o.seq == 32760) {
    grid = {21, 30, 52};
  } else if (o.seq == 75600) {
    grid = {21, 45, 80};
  } else {
    return invalid_argument(strfmt("--method %s plans for a video grid, and L=%lld is not a Wan latent grid (32760 = "
                                   "21x30x52 for 480p, 75600 = 21x45x80 for 720p); pass --grid F,H,W",
                                   o.method.c_str(), static_cast<long long>(o.seq)));
  }
  if (grid.tokens() != o.seq) {
    return invalid_argument(strfmt("--grid gives %lld tokens but --seq is %lld", static_cast<long long>(grid.tokens()),
                                   static_cast<long long>(o.seq)));
  }
  nlohmann::json cfg = o.config.empty() ? nlohmann::json::object() : nlohmann::json::parse(o.config, nullptr, false);
  if (!cfg.is_object()) return invalid_argument("--config must be a JSON object");
  if (!cfg.contains("preset")) cfg["preset"] = "none";  // presets run early steps dense
  if (!cfg.contains("block") && o.method != "draft") cfg["block"] = o.block;
  if (o.method == "draft" && !cfg.contains("sparsity")) cfg["sparsity"] = 1.0 - d;
  if (o.method == "rettention" && !cfg.contains("full_steps")) cfg["full_steps"] = 0;
  attn::ModelInfo model;
  model.num_heads = o.heads;
  model.head_dim = o.head_dim;
  model.grid = grid;
  model.num_steps = 50;
  VDIT_ASSIGN(auto method, attn::make_attention(o.method, cfg, model));
  attn::AttentionCall call;
  call.grid = grid;
  call.num_steps = 50;
  attn::QKV in{nullptr, nullptr, nullptr, o.seq, o.heads, o.head_dim};
  std::vector<float> q, k;
  if (!method->static_layout()) {  // data-dependent planners (draft): random q/k on the host
    const size_t n = static_cast<size_t>(o.seq) * o.heads * o.head_dim;
    q.resize(n);
    k.resize(n);
    parallel_for(static_cast<int64_t>(n / 4096 + 1), [&](int64_t c) {
      for (size_t i = static_cast<size_t>(c) * 4096; i < std::min(n, static_cast<size_t>(c + 1) * 4096); ++i) {
        q[i] = attn::bench_uniform(Inputs::seed_of(0, 0), i, 1.f);
        k[i] = attn::bench_uniform(Inputs::seed_of(0, 1), i, 1.f);
      }
    });
    in.q = q.data();
    in.k = k.data();
    in.v = k.data();
  }
  auto planned = method->plan_only(call, in);
  if (!planned.is_ok()) {
    return planned.status().with_context(strfmt("planning %s (methods without a BlockLayout, such as vmoba, cannot be "
                                                "benchmarked here)", o.method.c_str()));
  }
  if (!*planned) return invalid_argument(strfmt("%s planned this call dense", o.method.c_str()));
  *note = strfmt("grid %lldx%lldx%lld, config %s", static_cast<long long>(grid.f), static_cast<long long>(grid.h),
                 static_cast<long long>(grid.w), method->describe().dump().c_str());
  return **planned;
}

struct Timing {
  double median_ms = 0, min_ms = 0;
};

// 2 warm-ups, then `iters` calls on rotating input sets, each timed with its own event pair.
Result<Timing> time_calls(int iters, const std::function<Status(int)>& call) {
  for (int i = 0; i < 2; ++i) VDIT_TRY(call(i % kSets));
  VDIT_CHECK(cudaDeviceSynchronize());
  std::vector<cudaEvent_t> ev(static_cast<size_t>(2 * iters));
  for (auto& e : ev) VDIT_CHECK(cudaEventCreate(&e));
  Status st;
  for (int i = 0; i < iters && st.is_ok(); ++i) {
    VDIT_CHECK(cudaEventRecord(ev[static_cast<size_t>(2 * i)]));
    st = call(i % kSets);
    VDIT_CHECK(cudaEventRecord(ev[static_cast<size_t>(2 * i + 1)]));
  }
  VDIT_CHECK(cudaDeviceSynchronize());
  std::vector<double> ms;
  for (int i = 0; i < iters && st.is_ok(); ++i) {
    float t = 0;
    VDIT_CHECK(cudaEventElapsedTime(&t, ev[static_cast<size_t>(2 * i)], ev[static_cast<size_t>(2 * i + 1)]));
    ms.push_back(t);
  }
  for (auto& e : ev) cudaEventDestroy(e);
  VDIT_TRY(st);
  std::sort(ms.begin(), ms.end());
  return Timing{ms[ms.size() / 2], ms.front()};
}

struct Validation {
  double err = 0, naive_err = 0, lse_err = 0, max_ref = 0;
  bool ok = false;
  std::string where;
};

// CPU reference of a few query blocks (0, nQ/2, nQ-1) of heads 0 and NH-1: double precision (`ref`) and the
// naive same-precision version with P rounded (`naive`), computed once per layout.
struct SliceReference {
  struct Block {
    int head = 0;
    int64_t rows = 0;
    std::vector<float> ref, naive, lse;
    std::vector<int64_t> orig;
  };
  std::vector<Block> blocks;
};

Result<SliceReference> slice_reference(const Options& o, const BlockLayout& lay, DeviceDType dt) {
  const int64_t L = o.seq, nq = lay.num_q_blocks(), D = o.head_dim, B = lay.block;
  const std::vector<int> heads = o.heads > 1 ? std::vector<int>{0, o.heads - 1} : std::vector<int>{0};
  std::vector<int64_t> qblocks = {0, nq / 2, nq - 1};
  qblocks.erase(std::unique(qblocks.begin(), qblocks.end()), qblocks.end());
  auto io = [&](float x) { return dt == DeviceDType::bf16 ? bf16_to_f32(f32_to_bf16(x)) : f16_to_f32(f32_to_f16(x)); };
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const attn::RoundP rp = dt == DeviceDType::bf16 ? attn::RoundP::bf16 : attn::RoundP::f16;
  SliceReference sr;
  for (int h : heads) {
    std::vector<float> q(static_cast<size_t>(L * D)), k(q.size()), v(q.size());
    parallel_for(L, [&](int64_t t) {
      for (int64_t d = 0; d < D; ++d) {
        const uint64_t i = static_cast<uint64_t>((t * o.heads + h) * D + d);
        q[static_cast<size_t>(t * D + d)] = io(attn::bench_uniform(Inputs::seed_of(0, 0), i, 1.f));
        k[static_cast<size_t>(t * D + d)] = io(attn::bench_uniform(Inputs::seed_of(0, 1), i, 1.f));
        v[static_cast<size_t>(t * D + d)] = io(attn::bench_uniform(Inputs::seed_of(0, 2), i, 1.f));
      }
    });
    const attn::HeadRows rows{q.data(), k.data(), v.data(), D, static_cast<int>(D)};
    const size_t nb = qblocks.size(), first = sr.blocks.size();
    sr.blocks.resize(first + nb);
    std::vector<Status> sts(2 * nb);
    std::vector<std::vector<float>> naive_lse(nb, std::vector<float>(static_cast<size_t>(B)));
    std::vector<std::vector<int64_t>> naive_orig(nb, std::vector<int64_t>(static_cast<size_t>(B)));
    for (size_t b = 0; b < nb; ++b) {
      SliceReference::Block& blk = sr.blocks[first + b];
      blk.head = h;
      blk.rows = std::min(B, L - qblocks[b] * B);
      blk.ref.resize(static_cast<size_t>(B * D));
      blk.naive.resize(static_cast<size_t>(B * D));
      blk.lse.resize(static_cast<size_t>(B));
      blk.orig.resize(static_cast<size_t>(B));
    }
    parallel_for(static_cast<int64_t>(2 * nb), [&](int64_t j) {
      const size_t b = static_cast<size_t>(j) % nb;
      SliceReference::Block& blk = sr.blocks[first + b];
      const bool naive = static_cast<size_t>(j) >= nb;
      sts[static_cast<size_t>(j)] = attn::block_rows_reference(
          naive ? blk.naive.data() : blk.ref.data(), naive ? naive_lse[b].data() : blk.lse.data(),
          naive ? naive_orig[b].data() : blk.orig.data(), lay, h, qblocks[b], rows, scale,
          naive ? rp : attn::RoundP::none);
    });
    for (const Status& st : sts) VDIT_TRY(st);
    for (size_t b = 0; b < nb; ++b) {
      for (float& x : sr.blocks[first + b].naive) x = io(x);
    }
  }
  return sr;
}

// Runs the kernel on input set 0 and compares the slice with the reference: flash-attention rule
// max|gpu − ref| ≤ 2·max|naive − ref| + 1e-6, and |LSE error| ≤ 1e-3.
Result<Validation> validate(const Options& o, const SliceReference& sr, const attn::DeviceBlockLayout& dl,
                            const Inputs& in, const attn::BlockSparseOptions& opts) {
  VDIT_TRY(attn::block_sparse_attention_cuda(in.call(0), dl, {}, opts));
  VDIT_CHECK(cudaDeviceSynchronize());
  const int64_t L = o.seq, D = o.head_dim;
  std::vector<float> lse(static_cast<size_t>(o.heads) * L);
  VDIT_TRY(in.lse.copy_to_host(lse.data(), lse.size() * 4));
  Validation val;
  std::vector<uint16_t> got(static_cast<size_t>(D));
  for (const SliceReference::Block& blk : sr.blocks) {
    const int h = blk.head;
    for (int64_t i = 0; i < blk.rows; ++i) {
      const int64_t t = blk.orig[static_cast<size_t>(i)];
      VDIT_CHECK(cudaMemcpy(got.data(), in.out.as<uint16_t>() + (t * o.heads + h) * D, D * 2, cudaMemcpyDeviceToHost));
      for (int64_t d = 0; d < D; ++d) {
        const float g = in.dtype == DeviceDType::bf16 ? bf16_to_f32(got[d]) : f16_to_f32(got[d]);
        const double ref = blk.ref[static_cast<size_t>(i * D + d)];
        const double e = std::isfinite(g) ? std::fabs(g - ref) : INFINITY;
        if (e > val.err) {
          val.err = e;
          val.where = strfmt("head %d token %lld d %lld: got %g, want %g", h, static_cast<long long>(t),
                             static_cast<long long>(d), g, ref);
        }
        val.naive_err = std::max(val.naive_err, std::fabs(blk.naive[static_cast<size_t>(i * D + d)] - ref));
        val.max_ref = std::max(val.max_ref, std::fabs(ref));
      }
      const double le = std::fabs(static_cast<double>(lse[static_cast<size_t>(h * L + t)]) - blk.lse[static_cast<size_t>(i)]);
      val.lse_err = std::max(val.lse_err, std::isfinite(le) ? le : INFINITY);
    }
  }
  val.ok = val.err <= 2 * val.naive_err + 1e-6 && val.lse_err <= 1e-3;
  return val;
}

std::string layout_path(const Options& o, double d, size_t count) {
  if (count <= 1) return o.save_layout;
  std::string p = o.save_layout, ext = ".npz";
  if (p.size() > ext.size() && p.compare(p.size() - ext.size(), ext.size(), ext) == 0) p.resize(p.size() - ext.size());
  return p + strfmt("_d%g", d) + ext;
}

Status run(const Options& o) {
  VDIT_TRY(attn::check_block_size(o.block));
  if (o.seq <= 0 || o.heads <= 0 || o.iters <= 0) return invalid_argument("--seq, --heads and --iters must be positive");
  if (o.head_dim != 64 && o.head_dim != 128) return unsupported("--head-dim: the CUDA kernel has 64 and 128");
  if (o.dtype != "bf16" && o.dtype != "f16") return invalid_argument("--dtype must be bf16 or f16");
  if (o.perm != "none" && o.perm != "shared" && o.perm != "per-head") {
    return invalid_argument("--perm must be none, shared or per-head");
  }
  for (double d : o.densities) {
    if (!(d > 0 && d <= 1)) return invalid_argument(strfmt("--density %g is outside (0, 1]", d));
  }
  if (cuda_device_count() == 0) return unsupported("vdit bench attention needs a CUDA GPU; none is visible");
  const DeviceDType dt = o.dtype == "bf16" ? DeviceDType::bf16 : DeviceDType::f16;
  const bool planner = o.method != "dense" && o.method != "random";
  VDIT_ASSIGN(Inputs in, make_inputs(o, dt));
  const double L = static_cast<double>(o.seq), dense_flop = 4.0 * L * L * o.head_dim * o.heads;
  std::printf("vdit bench attention: method %s%s, L=%lld NH=%d HD=%d block %d %s, %d timed calls (median), "
              "inputs rotated over %d sets\n",
              o.method.c_str(), o.perm == "none" ? "" : (", perm " + o.perm).c_str(), static_cast<long long>(o.seq), o.heads, o.head_dim, o.block, o.dtype.c_str(), o.iters,
              kSets);
  nlohmann::json js = {{"method", o.method}, {"perm", o.perm}, {"L", o.seq}, {"heads", o.heads}, {"head_dim", o.head_dim},
                       {"block", o.block}, {"dtype", o.dtype}, {"iters", o.iters}, {"results", nlohmann::json::array()}};
  std::printf("%-34s %8s %10s %9s %9s %12s %12s %9s %9s\n", "kernel", "density", "valid.err", "ms", "min ms",
              "TFLOP/s comp", "TFLOP/s eff", "x cuDNN", "x dense");

  double cudnn_ms = 0, dense_ms = 0;
  if (!o.no_cudnn) {
    auto sdpa = attn::CudnnSdpa::create();
    if (!sdpa.is_ok()) {
      std::printf("%-34s unavailable: %s\n", "cudnn_sdpa (dense)", sdpa.status().message().c_str());
    } else {
      auto t = time_calls(o.iters, [&](int s) { return (*sdpa)->forward(in.call(s)); });
      if (!t.is_ok()) {
        std::printf("%-34s failed: %s\n", "cudnn_sdpa (dense)", t.status().message().c_str());
      } else {
        cudnn_ms = t->median_ms;
        std::printf("%-34s %8.4f %10s %9.3f %9.3f %12.1f %12.1f %9.2f %9s\n", "cudnn_sdpa (dense)", 1.0, "-",
                    t->median_ms, t->min_ms, dense_flop / t->median_ms * 1e-9, dense_flop / t->median_ms * 1e-9, 1.0,
                    "-");
        js["cudnn_dense"] = {{"ms", t->median_ms}, {"min_ms", t->min_ms}, {"tflops", dense_flop / t->median_ms * 1e-9}};
      }
    }
  }

  // Main loops to time: --loop auto | mma_sync | wgmma | all (every one this build has).
  std::vector<attn::BlockSparseLoop> loops;
  if (o.loop == "auto") {
    loops = {attn::BlockSparseLoop::automatic};
  } else if (o.loop == "mma_sync") {
    loops = {attn::BlockSparseLoop::mma_sync};
  } else if (o.loop == "wgmma") {
    loops = {attn::BlockSparseLoop::wgmma};
  } else if (o.loop == "all") {
    loops = {attn::BlockSparseLoop::mma_sync};
    if (attn::block_sparse_wgmma_available()) loops.push_back(attn::BlockSparseLoop::wgmma);
  } else {
    return invalid_argument("--loop must be auto, mma_sync, wgmma or all");
  }
  auto loop_name = [](attn::BlockSparseLoop l) {
    return l == attn::BlockSparseLoop::wgmma ? "[wgmma]" : l == attn::BlockSparseLoop::mma_sync ? "[mma]" : "";
  };
  struct Run {
    std::string name;
    double density;  // requested (random/planner) or 1
    bool is_dense;
    attn::BlockSparseLoop loop;
  };
  std::vector<Run> runs;
  for (attn::BlockSparseLoop l : loops) {
    if (!o.no_dense || o.method == "dense") {
      runs.push_back({strfmt("block_sparse_cuda%s (d=1)", loop_name(l)), 1.0, true, l});
    }
  }
  if (o.method != "dense") {
    for (double d : o.densities) {
      for (attn::BlockSparseLoop l : loops) {
        runs.push_back({strfmt("block_sparse_cuda%s %s", loop_name(l), o.method.c_str()), d, false, l});
      }
      if (planner && o.method != "draft") break;  // one layout; --density does not apply
    }
  }
  std::mt19937 rng(o.seed);
  std::string note;
  Result<BlockLayout> lay = internal_error("no layout");
  attn::DeviceBlockLayout dl;
  SliceReference sref;
  double last_density = -1;
  bool last_dense = false;
  for (const Run& r : runs) {
    if (r.density != last_density || r.is_dense != last_dense) {  // a new layout (shared by the loops)
      note.clear();
      lay = r.is_dense ? Result<BlockLayout>(attn::dense_layout(o.seq, o.heads, o.block))
            : planner  ? planner_layout(o, r.density, &note)
                       : random_layout(o, r.density, rng);
      VDIT_TRY(lay.status());
      VDIT_ASSIGN(dl, attn::DeviceBlockLayout::upload(*lay));
      VDIT_ASSIGN(sref, slice_reference(o, *lay, dt));
      if (!o.save_layout.empty() && !r.is_dense) {
        const size_t sparse_layouts = o.method == "dense" ? 0 : planner && o.method != "draft" ? 1 : o.densities.size();
        const std::string path = layout_path(o, r.density, sparse_layouts);
        VDIT_TRY(attn::save_block_lists_npz(path, *lay));
        std::printf("    block lists written to %s\n", path.c_str());
      }
      last_density = r.density;
      last_dense = r.is_dense;
    }
    attn::BlockSparseOptions opts;
    opts.loop = r.loop;
    VDIT_ASSIGN(Validation val, validate(o, sref, dl, in, opts));
    if (!val.ok) {
      return internal_error(strfmt("%s failed validation: max|gpu-ref| = %g (naive same-precision: %g), LSE error %g, "
                                   "worst at %s; reproduce: vdit bench attention --method %s --heads %d --seq %lld "
                                   "--head-dim %d --block %d --dtype %s --density %g --seed %u",
                                   r.name.c_str(), val.err, val.naive_err, val.lse_err, val.where.c_str(),
                                   o.method.c_str(), o.heads, static_cast<long long>(o.seq), o.head_dim, o.block,
                                   o.dtype.c_str(), r.density, o.seed));
    }
    VDIT_ASSIGN(Timing t, time_calls(o.iters, [&](int s) {
      return attn::block_sparse_attention_cuda(in.call(s), dl, {}, opts);
    }));
    const double comp = 4.0 * dl.listed_elements() * o.head_dim;
    if (r.is_dense && (dense_ms == 0 || t.median_ms < dense_ms)) dense_ms = t.median_ms;
    const std::string x_cudnn = cudnn_ms > 0 ? strfmt("%.2f", cudnn_ms / t.median_ms) : "-";
    const std::string x_dense = dense_ms > 0 && !r.is_dense ? strfmt("%.2f", dense_ms / t.median_ms) : "-";
    std::printf("%-34s %8.4f %10.2e %9.3f %9.3f %12.1f %12.1f %9s %9s\n", r.name.c_str(), dl.block_density(),
                val.max_ref > 0 ? val.err / val.max_ref : val.err, t.median_ms, t.min_ms, comp / t.median_ms * 1e-9,
                dense_flop / t.median_ms * 1e-9, x_cudnn.c_str(), x_dense.c_str());
    if (!note.empty()) std::printf("    %s\n", note.c_str());
    nlohmann::json jr = {{"kernel", r.name}, {"loop", loop_name(r.loop)}, {"density_requested", r.density}, {"block_density", dl.block_density()},
                         {"element_density", lay->element_density()}, {"ms", t.median_ms}, {"min_ms", t.min_ms},
                         {"tflops_computed", comp / t.median_ms * 1e-9}, {"tflops_effective", dense_flop / t.median_ms * 1e-9},
                         {"valid_max_abs_err", val.err}, {"valid_naive_err", val.naive_err}, {"valid_lse_err", val.lse_err}};
    if (cudnn_ms > 0) jr["speedup_vs_cudnn_dense"] = cudnn_ms / t.median_ms;
    if (dense_ms > 0 && !r.is_dense) jr["speedup_vs_ours_dense"] = dense_ms / t.median_ms;
    if (!note.empty()) jr["note"] = note;
    js["results"].push_back(jr);
  }
  std::printf("TFLOP/s comp = 4·(listed blocks × B², clipped at the tail)·HD / time; eff = 4·L²·HD·NH / time\n");
  if (!o.json_path.empty()) {
    std::ofstream f(o.json_path);
    f << js.dump(2) << "\n";
    if (!f) return io_error(o.json_path + ": write failed");
  }
  return Status::ok();
}

std::function<int()> setup(CLI::App& app) {
  auto o = std::make_shared<Options>();
  app.add_option("--method", o->method, "dense | random | radial | draft | rettention | paro (planned on the CPU)");
  app.add_option("--heads", o->heads, "heads NH (default 12)");
  app.add_option("--seq", o->seq, "tokens L (default 32768)");
  app.add_option("--head-dim", o->head_dim, "64 or 128 (default 128)");
  app.add_option("--density", o->densities, "block densities of random lists (draft: 1 - sparsity), comma list")
      ->delimiter(',');
  app.add_option("--block", o->block, "block size 64 or 128 (default 128)");
  app.add_option("--dtype", o->dtype, "bf16 or f16 (default bf16)");
  app.add_option("--iters", o->iters, "timed calls, the median is reported (default 10)");
  app.add_option("--json", o->json_path, "write the results as JSON");
  app.add_option("--save-layout", o->save_layout, "write the block lists as .npz (one file per density: _d<d>)");
  app.add_option("--grid", o->grid, "latent grid F,H,W for planner methods (default: Wan 480p/720p by L)")->delimiter(',');
  app.add_option("--config", o->config, "planner configuration (JSON object; preset none unless given)");
  app.add_option("--seed", o->seed, "seed of the random layouts");
  app.add_flag("--no-cudnn", o->no_cudnn, "skip the cuDNN dense reference");
  app.add_flag("--no-dense", o->no_dense, "skip our kernel at density 1");
  app.add_option("--perm", o->perm, "random lists: none (default), shared or per-head random token permutation");
  app.add_option("--loop", o->loop, "main loop: auto (default), mma_sync, wgmma, or all that this build has");
  return [o] {
    Status s = run(*o);
    return s.is_ok() ? 0 : report_error(s.message());
  };
}

}  // namespace

VDIT_REGISTER_COMMAND("bench attention",
                      "Time the block-sparse CUDA attention kernel (validated first) against cuDNN dense SDPA", 62,
                      setup);

}  // namespace vdit::cli
