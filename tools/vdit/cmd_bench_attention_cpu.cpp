// `vdit bench attention-cpu`: times the block-sparse CPU kernel at several densities (random per-head
// layouts with exactly round(density·nB) key blocks per row, diagonal included) next to the dense kernel,
// after validating each configuration against the dense-masked double reference on a shorter sequence.
// Reports time, achieved GFLOP/s and effective (dense-equivalent) GFLOP/s, and time relative to density 1.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>
#include <random>

#include "attention/block_layout.h"
#include "attention/block_sparse_cpu.h"
#include "attention/dense_cpu.h"
#include "dit/core/parallel.h"
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

struct BenchOptions {
  int64_t seq_len = 8192;
  int heads = 2;
  int head_dim = 128;
  int block = 128;
  std::vector<double> densities = {1.0, 0.5, 0.25, 0.125};
  int repeats = 3;
  int64_t validate_len = 1100;
  uint32_t seed = 1;
};

Result<attn::BlockLayout> random_layout(int64_t L, int NH, int block, double density, std::mt19937& rng) {
  const int64_t nb = (L + block - 1) / block;
  const int64_t per_row = std::clamp<int64_t>(std::llround(density * nb), 1, nb);
  std::vector<uint8_t> states(static_cast<size_t>(NH * nb * nb), attn::kBlockAbsent);
  std::vector<int64_t> others(static_cast<size_t>(nb));
  for (int h = 0; h < NH; ++h) {
    for (int64_t qb = 0; qb < nb; ++qb) {
      uint8_t* row = states.data() + (h * nb + qb) * nb;
      row[qb] = attn::kBlockFull;
      others.resize(static_cast<size_t>(nb));
      std::iota(others.begin(), others.end(), 0);
      others.erase(others.begin() + qb);
      std::shuffle(others.begin(), others.end(), rng);
      for (int64_t i = 0; i + 1 < per_row; ++i) row[others[static_cast<size_t>(i)]] = attn::kBlockFull;
    }
  }
  return attn::layout_from_block_states(states, NH, NH, L, block);
}

std::vector<float> randn(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(n);
  for (auto& e : x) e = nd(rng);
  return x;
}

// max|out - ref| / max|ref| of the kernel vs the reference on a validate_len problem at this density.
Result<double> validate(const BenchOptions& o, double density) {
  std::mt19937 rng(o.seed + 17);
  const int64_t L = o.validate_len;
  const size_t n = static_cast<size_t>(L) * o.heads * o.head_dim;
  const auto q = randn(n, rng), k = randn(n, rng), v = randn(n, rng);
  VDIT_ASSIGN(attn::BlockLayout lay, random_layout(L, o.heads, o.block, density, rng));
  std::vector<float> out(n), ref(n);
  const float scale = 1.0f / std::sqrt(static_cast<float>(o.head_dim));
  VDIT_TRY(attn::block_sparse_attention_cpu(out.data(), nullptr, lay, q.data(), k.data(), v.data(), L, o.heads,
                                            o.head_dim, scale));
  VDIT_TRY(attn::block_sparse_attention_reference(ref.data(), nullptr, lay, q.data(), k.data(), v.data(), L, o.heads,
                                                  o.head_dim, scale));
  double err = 0, mx = 0;
  for (size_t i = 0; i < n; ++i) {
    err = std::max(err, std::fabs(static_cast<double>(out[i]) - ref[i]));
    mx = std::max(mx, std::fabs(static_cast<double>(ref[i])));
  }
  return mx > 0 ? err / mx : err;
}

template <class F>
double best_seconds(int repeats, F&& f) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

Status run(const BenchOptions& o) {
  VDIT_TRY(attn::check_block_size(o.block));
  if (o.seq_len <= 0 || o.heads <= 0 || o.head_dim <= 0 || o.repeats <= 0 || o.validate_len <= 0) {
    return invalid_argument("bench attention-cpu: sizes and --repeats must be positive");
  }
  for (double d : o.densities) {
    if (!(d > 0 && d <= 1)) return invalid_argument(strfmt("bench attention-cpu: density %g is outside (0, 1]", d));
  }
  std::mt19937 rng(o.seed);
  const int64_t L = o.seq_len;
  const size_t n = static_cast<size_t>(L) * o.heads * o.head_dim;
  const auto q = randn(n, rng), k = randn(n, rng), v = randn(n, rng);
  std::vector<float> out(n), lse(static_cast<size_t>(L) * o.heads);
  const float scale = 1.0f / std::sqrt(static_cast<float>(o.head_dim));
  const double dense_flops = 4.0 * static_cast<double>(L) * L * o.head_dim * o.heads;
  std::printf("block-sparse CPU attention: L=%lld NH=%d HD=%d block=%d threads=%d, best of %d\n",
              static_cast<long long>(L), o.heads, o.head_dim, o.block, num_threads(), o.repeats);
  const double t_dense = best_seconds(o.repeats, [&] {
    attn::dense_attention_cpu(out.data(), lse.data(), q.data(), k.data(), v.data(), L, L, o.heads, o.head_dim, scale);
  });
  std::printf("%-22s %9s %10s %10s %12s %12s %10s\n", "kernel", "density", "valid.err", "time (s)", "GFLOP/s",
              "eff.GFLOP/s", "t/t(1.0)");
  std::printf("%-22s %9.4f %10s %10.4f %12.2f %12.2f %10s\n", "dense_attention_cpu", 1.0, "-", t_dense,
              dense_flops / t_dense * 1e-9, dense_flops / t_dense * 1e-9, "-");
  double t_full = -1;
  for (double d : o.densities) {
    VDIT_ASSIGN(double err, validate(o, d));
    if (!(err <= 1e-5)) {
      return internal_error(strfmt("block-sparse kernel failed validation at density %g: max|d|/max|ref| = %g "
                                   "(reproduce: attn(hd=%d, L=%lld, NH=%d, block=%d, random density %g, seed %u))",
                                   d, err, o.head_dim, static_cast<long long>(o.validate_len), o.heads, o.block, d,
                                   o.seed + 17));
    }
    VDIT_ASSIGN(attn::BlockLayout lay, random_layout(L, o.heads, o.block, d, rng));
    Status st;
    const double t = best_seconds(o.repeats, [&] {
      st = attn::block_sparse_attention_cpu(out.data(), lse.data(), lay, q.data(), k.data(), v.data(), L, o.heads,
                                            o.head_dim, scale);
    });
    VDIT_TRY(st);
    const double real_density = lay.block_density();
    if (t_full < 0 && d == 1.0) t_full = t;
    std::printf("%-22s %9.4f %10.2e %10.4f %12.2f %12.2f %10s\n", "block_sparse_cpu", real_density, err, t,
                dense_flops * real_density / t * 1e-9, dense_flops / t * 1e-9,
                t_full > 0 ? strfmt("%.3f", t / t_full).c_str() : "-");
  }
  return Status::ok();
}

std::function<int()> setup_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  app.add_option("--seq-len", o->seq_len, "tokens L (default 8192)");
  app.add_option("--heads", o->heads, "heads NH (default 2)");
  app.add_option("--head-dim", o->head_dim, "head dim HD (default 128)");
  app.add_option("--block", o->block, "block size 64 or 128 (default 128)");
  app.add_option("--densities", o->densities, "block densities in (0, 1]; put 1 first for relative times")
      ->delimiter(',');
  app.add_option("--repeats", o->repeats, "timed runs per configuration; the best is reported (default 3)");
  app.add_option("--validate-len", o->validate_len, "sequence length of the validation run (default 1100)");
  app.add_option("--seed", o->seed, "random seed");
  return [o] {
    Status s = run(*o);
    return s.is_ok() ? 0 : report_error(s.message());
  };
}

}  // namespace

VDIT_REGISTER_COMMAND("bench attention-cpu",
                      "Time the block-sparse CPU attention kernel against density (validated first)", 61, setup_bench);

}  // namespace vdit::cli
