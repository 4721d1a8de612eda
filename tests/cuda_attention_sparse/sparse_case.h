// One GPU block-sparse attention case end to end: seeded random q/k/v rounded to the io dtype, the CUDA
// kernel, the dense-masked double reference (block_sparse_attention_reference) on the same rounded inputs,
// and the naive same-precision implementation (block_rows_reference with P rounded) for the tolerance.
// Tolerances (one bad element fails, the worst index is printed with a one-line reproducer):
//   out : max|gpu − ref| ≤ 2·max|naive − ref| + 1e-6   (flash-attention rule)
//         |gpu − ref|_i ≤ 3·(row max of |naive − ref|) + 4·u·|ref_i| + 1e-6 per element, u = 2^-8 (bf16),
//         2^-11 (f16): the row's own naive error bounds its kernel error, plus the output's rounding
//   lse : |gpu − ref| ≤ 1e-3 (S is exact f32 accumulation of the rounded inputs)
//   every element finite (out is pre-filled with NaN, so an unwritten element fails too)
#pragma once

#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "attention/block_sparse_cpu.h"
#include "attention/cuda/block_sparse_cuda.h"
#include "attention/cuda/block_sparse_rows_reference.h"
#include "attention/dense_cpu.h"
#include "dit/core/device_buffer.h"
#include "dit/core/dtype.h"
#include "dit/core/parallel.h"

namespace vdit::test {

struct SparseCase {
  int HD = 128;
  int NH = 2;
  attn::DeviceDType dtype = attn::DeviceDType::bf16;
  attn::BlockLayout layout;  // carries L, block, predicate, perm
  std::string layout_desc;   // "random(d=0.25, per-head)"
  bool rho = false;          // Re-ttention epilogue parts
  bool residual = false;
  bool lse = true;
  bool dense_cpu_ref = false;  // density-1 case: the reference is dense_attention_cpu
  uint32_t seed = 1;
  std::string loop_name;  // set per main loop by run_sparse_case

  std::string repro() const {
    const attn::BlockLayout& l = layout;
    std::string perm = !l.has_perm() ? "none" : l.perm_shared() ? "shared" : "per-head";
    std::string epi = rho && residual ? "rho+R" : rho ? "rho" : residual ? "R" : "none";
    return strfmt("attn(hd=%d, L=%lld, NH=%d, B=%d, %s, layout=%s, pred=%s%s, perm=%s, epilogue=%s, seed=%u)", HD,
                  static_cast<long long>(l.seq_len), NH, l.block, dtype == attn::DeviceDType::bf16 ? "bf16" : "f16",
                  layout_desc.c_str(), l.predicate.describe().c_str(), l.predicate.original_order ? " (original order)" : "",
                  perm.c_str(), epi.c_str(), seed);
  }
};

inline uint16_t to_io(float x, attn::DeviceDType t) {
  return t == attn::DeviceDType::bf16 ? f32_to_bf16(x) : f32_to_f16(x);
}
inline float from_io(uint16_t x, attn::DeviceDType t) {
  return t == attn::DeviceDType::bf16 ? bf16_to_f32(x) : f16_to_f32(x);
}

// Random normal values rounded to the io dtype: bits for the GPU, the rounded values in f32 for the CPU.
inline void make_io(std::vector<uint16_t>& bits, std::vector<float>& vals, size_t n, float sigma, attn::DeviceDType t,
                    std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, sigma);
  bits.resize(n);
  vals.resize(n);
  for (size_t i = 0; i < n; ++i) {
    bits[i] = to_io(nd(rng), t);
    vals[i] = from_io(bits[i], t);
  }
}

template <class T>
Result<DeviceBuffer> to_device(const std::vector<T>& v) {
  VDIT_ASSIGN(DeviceBuffer b, DeviceBuffer::allocate(std::max<size_t>(16, v.size() * sizeof(T))));
  if (!v.empty()) VDIT_TRY(b.copy_from_host(v.data(), v.size() * sizeof(T)));
  return b;
}

// The kernel call on uploaded buffers: q, k, v, out [L, NH, HD] of `dtype`; lse [NH, L] f32 or null.
inline attn::DeviceQKV device_call(const DeviceBuffer& q, const DeviceBuffer& k, const DeviceBuffer& v,
                                   DeviceBuffer& out, float* lse, int64_t L, int NH, int HD, attn::DeviceDType dtype) {
  attn::DeviceQKV call;
  call.q = q.data();
  call.k = k.data();
  call.v = v.data();
  call.out = out.data();
  call.lse = lse;
  call.L = L;
  call.NH = NH;
  call.HD = HD;
  call.dtype = dtype;
  return call;
}

// Runs the kernel with `loop` on the io bits; out and lse come back in `outb` / `gl`.
inline void run_gpu_case(const SparseCase& c, const attn::BlockLayout& lay, const std::vector<uint16_t>& qb,
                         const std::vector<uint16_t>& kb, const std::vector<uint16_t>& vb,
                         const std::vector<float>& rho, const std::vector<float>& res, attn::BlockSparseLoop loop,
                         std::vector<uint16_t>& outb, std::vector<float>& gl) {
  const int64_t L = lay.seq_len;
  const int NH = c.NH, HD = c.HD;
  const size_t n = static_cast<size_t>(L) * NH * HD, nl = static_cast<size_t>(NH) * L;
  const std::string repro = c.repro() + ", loop=" + c.loop_name;
  auto dl = attn::DeviceBlockLayout::upload(lay);
  ASSERT_TRUE(dl.is_ok()) << repro << ": " << dl.status().to_string();
  auto dq = to_device(qb), dk = to_device(kb), dv = to_device(vb);
  auto dout = to_device(std::vector<uint16_t>(n, 0xFFFFu));  // NaN in bf16 and f16
  auto dlse = to_device(std::vector<float>(nl, NAN));
  auto drho = to_device(rho), dres = to_device(res);
  ASSERT_TRUE(dq && dk && dv && dout && dlse && drho && dres) << repro;
  attn::DeviceQKV call = device_call(*dq, *dk, *dv, *dout, c.lse ? dlse->as<float>() : nullptr, L, NH, HD, c.dtype);
  attn::DeviceSparseEpilogue epi;
  epi.rho = c.rho ? drho->as<float>() : nullptr;
  epi.residual = c.residual ? dres->as<float>() : nullptr;
  attn::BlockSparseOptions opts;
  opts.loop = loop;
  Status st = attn::block_sparse_attention_cuda(call, *dl, epi, opts);
  ASSERT_TRUE(st.is_ok()) << repro << ": " << st.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << repro << ": kernel fault";
  ASSERT_TRUE(dout->copy_to_host(outb.data(), n * 2).is_ok()) << repro;
  ASSERT_TRUE(dlse->copy_to_host(gl.data(), nl * 4).is_ok()) << repro;
}

// Checks GPU outputs (out [L, NH, HD] io bits, lse [NH, L] when `check_lse`) against the reference and the
// naive same-precision implementation with the tolerances above; failures name `repro`.
inline void compare_outputs(const std::string& repro, int64_t L, int NH, int HD, attn::DeviceDType dtype,
                            bool check_lse, const std::vector<uint16_t>& outb, const std::vector<float>& gl,
                            const std::vector<float>& ref, const std::vector<float>& ref_lse,
                            const std::vector<float>& naive) {
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  const size_t nl = static_cast<size_t>(NH) * L;
  const double u = dtype == attn::DeviceDType::bf16 ? 1.0 / 256 : 1.0 / 2048;
  double err_gpu = 0, err_naive = 0;
  int64_t worst = -1, bad = -1, nonfinite = -1;
  double bad_excess = 0;
  for (int64_t row = 0; row < L * NH; ++row) {  // (token, head) rows of HD values
    double row_naive = 0;
    for (int d = 0; d < HD; ++d) {
      const size_t i = static_cast<size_t>(row * HD + d);
      row_naive = std::max(row_naive, std::fabs(static_cast<double>(naive[i]) - ref[i]));
    }
    err_naive = std::max(err_naive, row_naive);
    for (int d = 0; d < HD; ++d) {
      const size_t i = static_cast<size_t>(row * HD + d);
      const float g = from_io(outb[i], dtype);
      if (!std::isfinite(g)) {
        if (nonfinite < 0) nonfinite = static_cast<int64_t>(i);
        continue;
      }
      const double e = std::fabs(static_cast<double>(g) - ref[i]);
      if (e > err_gpu) {
        err_gpu = e;
        worst = static_cast<int64_t>(i);
      }
      const double excess = e - (3 * row_naive + 4 * u * std::fabs(ref[i]) + 1e-6);
      if (excess > bad_excess) {
        bad_excess = excess;
        bad = static_cast<int64_t>(i);
      }
    }
  }
  auto where = [&](int64_t i) {
    return strfmt("index %lld (token %lld, head %lld, d %lld): got %g, want %g, naive %g", static_cast<long long>(i),
                  static_cast<long long>(i / ld), static_cast<long long>(i % ld / HD), static_cast<long long>(i % HD),
                  from_io(outb[static_cast<size_t>(i)], dtype), ref[static_cast<size_t>(i)],
                  naive[static_cast<size_t>(i)]);
  };
  EXPECT_LT(nonfinite, 0) << repro << ": non-finite (or unwritten) output at " << (nonfinite >= 0 ? where(nonfinite) : "");
  EXPECT_LE(err_gpu, 2 * err_naive + 1e-6) << repro << ": max|gpu-ref| = " << err_gpu << " > 2 x max|naive-ref| = "
                                           << 2 * err_naive << "; worst " << (worst >= 0 ? where(worst) : "");
  EXPECT_LT(bad, 0) << repro << ": element beyond its bound by " << bad_excess << " at " << (bad >= 0 ? where(bad) : "");
  if (check_lse) {
    double err_lse = 0;
    int64_t wl = -1;
    for (size_t i = 0; i < nl; ++i) {
      const double e = std::isinf(ref_lse[i]) && gl[i] == ref_lse[i] ? 0.0 : std::fabs(static_cast<double>(gl[i]) - ref_lse[i]);
      if (!(e <= err_lse)) {
        err_lse = std::isnan(e) ? INFINITY : e;
        wl = static_cast<int64_t>(i);
      }
    }
    EXPECT_LE(err_lse, 1e-3) << repro << ": LSE error " << err_lse << " at head " << (wl >= 0 ? wl / L : -1)
                             << " token " << (wl >= 0 ? wl % L : -1) << " (got " << (wl >= 0 ? gl[wl] : 0.f)
                             << ", want " << (wl >= 0 ? ref_lse[wl] : 0.f) << ")";
  }
}

// Checks GPU outputs against the reference and the naive same-precision implementation.
inline void compare_case(const SparseCase& c, const attn::BlockLayout& lay, const std::vector<uint16_t>& outb,
                         const std::vector<float>& gl, const std::vector<float>& ref,
                         const std::vector<float>& ref_lse, const std::vector<float>& naive) {
  const std::string repro = c.repro() + (c.loop_name.empty() ? "" : ", loop=" + c.loop_name);
  compare_outputs(repro, lay.seq_len, c.NH, c.HD, c.dtype, c.lse, outb, gl, ref, ref_lse, naive);
}

// Runs the case; records a gtest failure (with the reproducer) on any mismatch.
inline void run_sparse_case(const SparseCase& c) {
  const attn::BlockLayout& lay = c.layout;
  const int64_t L = lay.seq_len;
  const int NH = c.NH, HD = c.HD;
  const int64_t ld = static_cast<int64_t>(NH) * HD;
  const size_t n = static_cast<size_t>(L) * ld, nl = static_cast<size_t>(NH) * L;
  const std::string repro = c.repro();
  ASSERT_EQ(lay.num_heads, NH) << repro;
  std::mt19937 rng(c.seed);
  std::vector<uint16_t> qb, kb, vb;
  std::vector<float> q, k, v;
  make_io(qb, q, n, 2.0f, c.dtype, rng);  // σ 2 for q: scores of std ~2, a peaked softmax
  make_io(kb, k, n, 1.0f, c.dtype, rng);
  make_io(vb, v, n, 1.0f, c.dtype, rng);
  std::vector<float> rho, res;
  if (c.rho) {
    std::uniform_real_distribution<float> ud(0.3f, 1.0f);
    rho.resize(nl);
    for (auto& x : rho) x = ud(rng);
  }
  if (c.residual) {
    std::normal_distribution<float> nd(0.f, 0.5f);
    res.resize(n);
    for (auto& x : res) x = nd(rng);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));

  // Reference (double, dense masked) and naive same-precision implementation.
  std::vector<float> ref(n), ref_lse(nl), naive(n);
  attn::SparseEpilogue hepi{c.rho ? rho.data() : nullptr, c.residual ? res.data() : nullptr};
  if (c.dense_cpu_ref) {
    attn::dense_attention_cpu(ref.data(), ref_lse.data(), q.data(), k.data(), v.data(), L, L, NH, HD, scale);
  } else {
    Status st = attn::block_sparse_attention_reference(ref.data(), ref_lse.data(), lay, q.data(), k.data(), v.data(), L, NH,
                                                HD, scale, hepi);
    ASSERT_TRUE(st.is_ok()) << repro << ": " << st.to_string();
  }
  const attn::RoundP rp = c.dtype == attn::DeviceDType::bf16 ? attn::RoundP::bf16 : attn::RoundP::f16;
  const int64_t nq = lay.num_q_blocks();
  std::vector<Status> job_status(static_cast<size_t>(NH * nq));
  parallel_for(NH * nq, [&](int64_t job) {
    const int h = static_cast<int>(job / nq);
    const int64_t qblk = job % nq;
    std::vector<float> o(static_cast<size_t>(lay.block) * HD), l(static_cast<size_t>(lay.block));
    std::vector<int64_t> orig(static_cast<size_t>(lay.block));
    attn::HeadRows in{q.data() + h * HD, k.data() + h * HD, v.data() + h * HD, ld, HD};
    job_status[static_cast<size_t>(job)] =
        attn::block_rows_reference(o.data(), l.data(), orig.data(), lay, h, qblk, in, scale, rp);
    const int64_t rows = std::min<int64_t>(lay.block, L - qblk * lay.block);
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t base = orig[static_cast<size_t>(i)] * ld + h * HD;
      const float rh = c.rho ? rho[static_cast<size_t>(h * L + orig[static_cast<size_t>(i)])] : 1.f;
      for (int d = 0; d < HD; ++d) {
        float x = o[static_cast<size_t>(i * HD + d)] * rh + (c.residual ? res[static_cast<size_t>(base + d)] : 0.f);
        naive[static_cast<size_t>(base + d)] = from_io(to_io(x, c.dtype), c.dtype);
      }
    }
  });
  for (const Status& s : job_status) ASSERT_TRUE(s.is_ok()) << repro << ": " << s.to_string();

  // Each available main loop on the GPU, compared with the same references.
  std::vector<attn::BlockSparseLoop> loops = {attn::BlockSparseLoop::mma_sync};
  if (attn::block_sparse_wgmma_available()) loops.push_back(attn::BlockSparseLoop::wgmma);
  for (attn::BlockSparseLoop loop : loops) {
    SparseCase cl = c;
    cl.loop_name = loop == attn::BlockSparseLoop::wgmma ? "wgmma" : "mma_sync";
    std::vector<uint16_t> outb(n);
    std::vector<float> gl(nl);
    run_gpu_case(cl, lay, qb, kb, vb, rho, res, loop, outb, gl);
    if (::testing::Test::HasFatalFailure()) return;
    compare_case(cl, lay, outb, gl, ref, ref_lse, naive);
  }
}

}  // namespace vdit::test
