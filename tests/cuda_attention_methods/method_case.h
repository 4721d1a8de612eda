// Helpers of the method GPU tests: seeded random q/k/v rounded to bf16 (bits for the GPU, the rounded values
// for the CPU method), a GPU call through forward_device, a CPU call through forward, and the comparison.
// Tolerance (per element, one bad element fails, the worst is printed with a reproducer):
//   |gpu − cpu| ≤ 2u·|cpu| + 4u·max|v|,  u = 2^-8 (bf16)
// The CPU methods compute in f32 on the same rounded inputs; the GPU kernels round P to bf16 before P·V
// (≤ u·Σ p|v| ≤ u·max|v|), round the output (u·|out|), and Re-ttention's residual R is formed from bf16
// outputs (≤ u·|O_full| + u·ρ|O_band|, each ≤ max|v|). A missing or extra block moves a row by a share of
// its softmax mass times |v|, far above this bound with the peaked scores used here (q σ 2, k σ 1).
#pragma once

#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "attention/methods/method.h"
#include "dit/core/device_buffer.h"
#include "dit/core/dtype.h"

namespace vdit::test {

struct MethodInputs {
  int64_t L = 0;
  int NH = 0, HD = 0;
  std::vector<uint16_t> qb, kb, vb;  // bf16 bits [L, NH, HD]
  std::vector<float> q, k, v;        // the same values in f32
  DeviceBuffer dq, dk, dv;
  mutable DeviceBuffer dout;  // written by every call
  float vmax = 0;
};

inline void fill_bf16(std::vector<uint16_t>& bits, std::vector<float>& vals, size_t n, float sigma, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, sigma);
  bits.resize(n);
  vals.resize(n);
  for (size_t i = 0; i < n; ++i) {
    bits[i] = f32_to_bf16(nd(rng));
    vals[i] = bf16_to_f32(bits[i]);
  }
}

inline Status make_inputs(MethodInputs* in, int64_t L, int NH, int HD, uint32_t seed) {
  in->L = L;
  in->NH = NH;
  in->HD = HD;
  const size_t n = static_cast<size_t>(L) * NH * HD;
  std::mt19937 rng(seed);
  fill_bf16(in->qb, in->q, n, 2.0f, rng);
  fill_bf16(in->kb, in->k, n, 1.0f, rng);
  fill_bf16(in->vb, in->v, n, 1.0f, rng);
  in->vmax = 0;
  for (float x : in->v) in->vmax = std::max(in->vmax, std::fabs(x));
  for (auto [buf, src] : {std::pair{&in->dq, &in->qb}, std::pair{&in->dk, &in->kb}, std::pair{&in->dv, &in->vb}}) {
    VDIT_ASSIGN(*buf, DeviceBuffer::allocate(n * 2));
    VDIT_TRY(buf->copy_from_host(src->data(), n * 2));
  }
  VDIT_ASSIGN(in->dout, DeviceBuffer::allocate(n * 2));
  return Status::ok();
}

inline attn::DeviceQKV device_call(const MethodInputs& in) {
  attn::DeviceQKV c;
  c.q = in.dq.data();
  c.k = in.dk.data();
  c.v = in.dv.data();
  c.out = in.dout.data();
  c.L = in.L;
  c.NH = in.NH;
  c.HD = in.HD;
  c.dtype = attn::DeviceDType::bf16;
  return c;
}

// forward_device, then the output in f32 (the out buffer is pre-filled with NaN so unwritten elements fail).
inline Result<std::vector<float>> run_gpu(attn::AttentionMethod& m, const attn::AttentionCall& call,
                                          const MethodInputs& in) {
  const size_t n = static_cast<size_t>(in.L) * in.NH * in.HD;
  std::vector<uint16_t> bits(n, 0xFFFFu);
  VDIT_TRY(in.dout.copy_from_host(bits.data(), n * 2));
  VDIT_TRY(m.forward_device(call, device_call(in)));
  if (cudaDeviceSynchronize() != cudaSuccess) return internal_error("kernel fault after forward_device");
  VDIT_TRY(in.dout.copy_to_host(bits.data(), n * 2));
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(bits[i]);
  return out;
}

inline Result<std::vector<float>> run_cpu(attn::AttentionMethod& m, const attn::AttentionCall& call,
                                          const MethodInputs& in) {
  std::vector<float> out(static_cast<size_t>(in.L) * in.NH * in.HD);
  VDIT_TRY(m.forward(call, in.q.data(), in.k.data(), in.v.data(), in.L, in.NH, in.HD, out.data()));
  return out;
}

// Returns the worst err/bound ratio (≤ 1 passes) and records a failure with `repro` otherwise.
inline double expect_outputs_close(const std::vector<float>& gpu, const std::vector<float>& cpu,
                                   const MethodInputs& in, const std::string& repro) {
  const double u = 1.0 / 256;
  double worst = 0;
  int64_t wi = -1, nonfinite = -1;
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (!std::isfinite(gpu[i])) {
      if (nonfinite < 0) nonfinite = static_cast<int64_t>(i);
      continue;
    }
    const double bound = 2 * u * std::fabs(cpu[i]) + 4 * u * in.vmax;
    const double r = std::fabs(static_cast<double>(gpu[i]) - cpu[i]) / bound;
    if (r > worst) {
      worst = r;
      wi = static_cast<int64_t>(i);
    }
  }
  const int64_t ld = static_cast<int64_t>(in.NH) * in.HD;
  EXPECT_LT(nonfinite, 0) << repro << ": non-finite or unwritten output at index " << nonfinite;
  EXPECT_LE(worst, 1.0) << repro << ": |gpu-cpu| is " << worst << " x the bound at token " << wi / ld << " head "
                        << wi % ld / in.HD << " d " << wi % in.HD << " (gpu " << gpu[static_cast<size_t>(wi)]
                        << ", cpu " << cpu[static_cast<size_t>(wi)] << ")";
  return worst;
}

inline attn::AttentionCall make_call(attn::VideoGrid grid, int layer, int num_layers, int step, int num_steps,
                                     int branch = 0) {
  attn::AttentionCall c;
  c.grid = grid;
  c.layer = layer;
  c.num_layers = num_layers;
  c.step = step;
  c.num_steps = num_steps;
  c.branch = branch;
  return c;
}

// One call through the GPU and the CPU method on the same inputs; expects them close (the rule above) and
// returns the worst err/bound ratio (printed with `repro`).
inline double compare_call(attn::AttentionMethod& gpu, attn::AttentionMethod& cpu, const attn::AttentionCall& call,
                           const MethodInputs& in, const std::string& repro) {
  auto g = run_gpu(gpu, call, in);
  EXPECT_TRUE(g.is_ok()) << repro << ": " << g.status().to_string();
  auto c = run_cpu(cpu, call, in);
  EXPECT_TRUE(c.is_ok()) << repro << ": " << c.status().to_string();
  if (!g.is_ok() || !c.is_ok()) return INFINITY;
  const double r = expect_outputs_close(*g, *c, in, repro);
  std::printf("  %-90s worst err/bound %.3f\n", repro.c_str(), r);
  return r;
}

// Mean milliseconds of `fn` (returning a Status) over `reps` runs on the default stream, after one warm-up
// run; -1 when a run fails.
template <class Fn>
double time_ms(Fn&& fn, int reps) {
  if (!fn().is_ok()) return -1;
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaEventRecord(a);
  for (int i = 0; i < reps; ++i) {
    if (!fn().is_ok()) return -1;
  }
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / reps;
}

}  // namespace vdit::test
