// cuDNN SDPA (attention/cuda/cudnn_sdpa.h) on the GPU against the CPU dense kernel run in f32 on the same
// bf16/f16-rounded inputs: the flash-attention rule (max error <= 2x the max error of a naive same-precision
// implementation, plus the output rounding) and a per-element bound, LSE within 1e-3, no unwritten or
// non-finite element. Also: the "dense" method's forward_device, streams, unsupported shapes and bad
// arguments, the version check, and (printed, not asserted) the time at the Wan2.1 shapes.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "attention/cuda/cudnn_sdpa.h"
#include "attention/dense_cpu.h"
#include "attention/methods/method.h"
#include "dit/core/device_buffer.h"
#include "dit/core/dtype.h"
#include "dit/core/parallel.h"
#include "tests/cuda_attention_dense/random_fill.h"

using namespace vdit;
using namespace vdit::attn;

namespace {

// ---- tolerances (one table) -------------------------------------------------------------------------
// flash rule: max|gpu - ref| <= kFlashFactor · max|naive - ref| + 2 · max|round(ref) - ref|, where `naive`
//   computes in the same precision (P rounded to bf16/f16 before P·V) and the last term is the output's own
//   rounding (so exact cases such as Lk = 1 must be exact);
// per element: |gpu - ref| <= kElemFactor · eps(dtype) · max|v| (an output is a convex combination of v rows;
//   catches single wild elements when the naive error happens to be large);
// LSE: f32 accumulation in both, natural log, values ~log(Lk): 1e-3 absolute.
constexpr double kFlashFactor = 2.0;
constexpr double kElemFactor = 2.0;
constexpr double kLseAbs = 1e-3;

const char* dtype_str(DeviceDType t) { return t == DeviceDType::bf16 ? "bf16" : "f16"; }
double eps_of(DeviceDType t) { return t == DeviceDType::bf16 ? 0x1p-7 : 0x1p-10; }
uint16_t to_bits(DeviceDType t, float x) { return t == DeviceDType::bf16 ? f32_to_bf16(x) : f32_to_f16(x); }
float from_bits(DeviceDType t, uint16_t b) { return t == DeviceDType::bf16 ? bf16_to_f32(b) : f16_to_f32(b); }
float round_to(DeviceDType t, float x) { return from_bits(t, to_bits(t, x)); }

struct Case {
  int64_t L = 1, Lk = 0;  // Lk 0 = L
  int NH = 1, HD = 64;
  DeviceDType dtype = DeviceDType::bf16;
  float q_gain = 1.f;  // > 1 sharpens the softmax
  bool lse = true;
  uint64_t seed = 1;

  int64_t keys() const { return Lk > 0 ? Lk : L; }
  std::string repro() const {
    return strfmt("cudnn_sdpa(L=%lld, Lk=%lld, NH=%d, HD=%d, %s, q_gain=%g, %s, seed=%llu)", static_cast<long long>(L),
                  static_cast<long long>(keys()), NH, HD, dtype_str(dtype), q_gain, lse ? "lse" : "no lse",
                  static_cast<unsigned long long>(seed));
  }
};

// Seeded normal inputs, rounded to the case's dtype: `bits` go to the GPU, the f32 copies to the CPU.
struct Inputs {
  std::vector<float> q, k, v;
  std::vector<uint16_t> qb, kb, vb;
};

Inputs make_inputs(const Case& c) {
  Inputs in;
  std::mt19937_64 rng(c.seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  auto fill = [&](std::vector<float>& f, std::vector<uint16_t>& b, int64_t rows, float gain) {
    const size_t n = static_cast<size_t>(rows) * c.NH * c.HD;
    f.resize(n);
    b.resize(n);
    for (size_t i = 0; i < n; ++i) {
      b[i] = to_bits(c.dtype, gain * normal(rng));
      f[i] = from_bits(c.dtype, b[i]);
    }
  };
  fill(in.q, in.qb, c.L, c.q_gain);
  fill(in.k, in.kb, c.keys(), 1.f);
  fill(in.v, in.vb, c.keys(), 1.f);
  return in;
}

// Naive same-precision attention: f32 scores and softmax, P rounded to the dtype, f32 P·V, output rounded.
// Query rows go in groups of kRows per head so each key/value row is read once per group, not per query.
void naive_same_precision(std::vector<float>& out, const Case& c, const Inputs& in, float scale) {
  constexpr int64_t kRows = 32;
  const int64_t L = c.L, Lk = c.keys(), ld = static_cast<int64_t>(c.NH) * c.HD;
  const int HD = c.HD;
  const int64_t groups = (L + kRows - 1) / kRows;
  out.assign(static_cast<size_t>(L) * ld, 0.f);
  parallel_for(groups * c.NH, [&](int64_t job) {
    const int64_t h = job % c.NH, i0 = (job / c.NH) * kRows, rows = std::min(kRows, L - i0);
    std::vector<float> s(static_cast<size_t>(rows * Lk)), o(static_cast<size_t>(rows * HD), 0.f);
    for (int64_t j = 0; j < Lk; ++j) {
      const float* kj = in.k.data() + j * ld + h * HD;
      for (int64_t r = 0; r < rows; ++r) {
        const float* qi = in.q.data() + (i0 + r) * ld + h * HD;
        float acc[8] = {};
        for (int d = 0; d < HD; d += 8)
          for (int u = 0; u < 8; ++u) acc[u] += qi[d + u] * kj[d + u];
        s[r * Lk + j] = scale * (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      float* sr = s.data() + r * Lk;
      float m = -INFINITY, sum = 0.f;
      for (int64_t j = 0; j < Lk; ++j) m = std::max(m, sr[j]);
      for (int64_t j = 0; j < Lk; ++j) sum += (sr[j] = std::exp(sr[j] - m));
      for (int64_t j = 0; j < Lk; ++j) sr[j] = round_to(c.dtype, sr[j] / sum);
    }
    for (int64_t j = 0; j < Lk; ++j) {
      const float* vj = in.v.data() + j * ld + h * HD;
      for (int64_t r = 0; r < rows; ++r) {
        const float p = s[r * Lk + j];
        float* orow = o.data() + r * HD;
        for (int d = 0; d < HD; ++d) orow[d] += p * vj[d];
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      float* dst = out.data() + (i0 + r) * ld + h * HD;
      for (int d = 0; d < HD; ++d) dst[d] = round_to(c.dtype, o[r * HD + d]);
    }
  });
}

struct DeviceTensors {
  DeviceBuffer q, k, v, out, lse;
};

// Uploads the inputs and fills out/lse with NaN bytes (0xFF), so unwritten elements are caught.
DeviceTensors upload(const Case& c, const Inputs& in) {
  DeviceTensors t;
  auto up = [](DeviceBuffer& b, const std::vector<uint16_t>& h) {
    auto r = DeviceBuffer::allocate(h.size() * 2);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    if (!r.is_ok()) return;
    b = std::move(r).value();
    EXPECT_TRUE(b.copy_from_host(h.data(), h.size() * 2).is_ok());
  };
  up(t.q, in.qb);
  up(t.k, in.kb);
  up(t.v, in.vb);
  auto o = DeviceBuffer::allocate(in.qb.size() * 2);
  auto l = DeviceBuffer::allocate(static_cast<size_t>(c.NH) * c.L * sizeof(float));
  EXPECT_TRUE(o.is_ok() && l.is_ok());
  if (!o.is_ok() || !l.is_ok()) return t;
  t.out = std::move(o).value();
  t.lse = std::move(l).value();
  EXPECT_EQ(cudaMemset(t.out.data(), 0xFF, t.out.size()), cudaSuccess);
  EXPECT_EQ(cudaMemset(t.lse.data(), 0xFF, t.lse.size()), cudaSuccess);
  return t;
}

DeviceQKV call_of(const Case& c, const DeviceTensors& t) {
  DeviceQKV a;
  a.q = t.q.data();
  a.k = t.k.data();
  a.v = t.v.data();
  a.out = t.out.data();
  a.lse = c.lse ? t.lse.as<float>() : nullptr;
  a.L = c.L;
  a.Lk = c.Lk;
  a.NH = c.NH;
  a.HD = c.HD;
  a.dtype = c.dtype;
  return a;
}

std::vector<float> download_out(const Case& c, const DeviceTensors& t) {
  std::vector<uint16_t> bits(t.out.size() / 2);
  EXPECT_TRUE(t.out.copy_to_host(bits.data(), t.out.size()).is_ok());
  std::vector<float> f(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) f[i] = from_bits(c.dtype, bits[i]);
  return f;
}

std::vector<float> download_lse(const DeviceTensors& t) {
  std::vector<float> f(t.lse.size() / sizeof(float));
  EXPECT_TRUE(t.lse.copy_to_host(f.data(), t.lse.size()).is_ok());
  return f;
}

// Checks `got` (the GPU output of case `c`, and its LSE when asked) against the CPU references.
void check_against_reference(const Case& c, const Inputs& in, const std::vector<float>& got,
                             const std::vector<float>* got_lse) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.HD));
  const int64_t n = c.L * c.NH * c.HD;
  std::vector<float> ref(static_cast<size_t>(n)), ref_lse(static_cast<size_t>(c.NH) * c.L), naive;
  dense_attention_cpu(ref.data(), ref_lse.data(), in.q.data(), in.k.data(), in.v.data(), c.L, c.keys(), c.NH, c.HD,
                      scale);
  naive_same_precision(naive, c, in, scale);

  double err = 0, err_naive = 0, out_round = 0, max_v = 0;
  int64_t worst = 0, bad_elems = 0, first_bad = -1, non_finite = 0;
  for (float x : in.v) max_v = std::max(max_v, std::fabs(static_cast<double>(x)));
  const double elem_bound = kElemFactor * eps_of(c.dtype) * max_v;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(got[i])) {
      ++non_finite;
      continue;
    }
    const double e = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (e > err) err = e, worst = i;
    if (e > elem_bound && bad_elems++ == 0) first_bad = i;
    err_naive = std::max(err_naive, std::fabs(static_cast<double>(naive[i]) - ref[i]));
    out_round = std::max(out_round, std::fabs(static_cast<double>(round_to(c.dtype, ref[i])) - ref[i]));
  }
  const double allowed = kFlashFactor * err_naive + 2 * out_round;
  auto where = [&](int64_t i) {
    const int64_t tok = i / (c.NH * c.HD), h = (i / c.HD) % c.NH, d = i % c.HD;
    return strfmt("[token %lld, head %lld, dim %lld]", static_cast<long long>(tok), static_cast<long long>(h),
                  static_cast<long long>(d));
  };
  EXPECT_EQ(non_finite, 0) << c.repro() << ": " << non_finite << " NaN/Inf or unwritten output elements";
  EXPECT_LE(err, allowed) << c.repro() << ": max|gpu-ref| " << err << " at " << where(worst) << " (got " << got[worst]
                          << ", want " << ref[worst] << "), allowed " << allowed << " = " << kFlashFactor
                          << " x naive " << err_naive << " + 2 x output rounding " << out_round;
  EXPECT_EQ(bad_elems, 0) << c.repro() << ": " << bad_elems << " elements above the per-element bound " << elem_bound
                          << "; first at " << where(std::max<int64_t>(first_bad, 0)) << " (got "
                          << got[std::max<int64_t>(first_bad, 0)] << ", want " << ref[std::max<int64_t>(first_bad, 0)]
                          << ")";
  double lse_err = 0;
  if (got_lse) {
    int64_t lw = 0;
    for (size_t i = 0; i < ref_lse.size(); ++i) {
      const double e = std::fabs(static_cast<double>((*got_lse)[i]) - ref_lse[i]);
      if (!(e <= lse_err)) lse_err = std::isnan(e) ? INFINITY : e, lw = static_cast<int64_t>(i);
    }
    // On failure also show what the value would be under the other conventions (log2, unscaled).
    EXPECT_LE(lse_err, kLseAbs) << c.repro() << ": LSE max error " << lse_err << " at [head " << lw / c.L << ", token "
                                << lw % c.L << "]: got " << (*got_lse)[lw] << ", want " << ref_lse[lw]
                                << " (natural log of the scaled scores; log2 of it would be "
                                << ref_lse[lw] / std::log(2.0) << ")";
  }
  std::printf("  %-78s max|d| %.3g (naive %.3g, allowed %.3g)%s\n", c.repro().c_str(), err, err_naive, allowed,
              got_lse ? strfmt(", lse %.2g", lse_err).c_str() : "");
}

void run_case(CudnnSdpa& sdpa, const Case& c) {
  SCOPED_TRACE(c.repro());
  const Inputs in = make_inputs(c);
  DeviceTensors t = upload(c, in);
  ASSERT_TRUE(t.out.data() != nullptr);
  Status s = sdpa.forward(call_of(c, t));
  ASSERT_TRUE(s.is_ok()) << c.repro() << ": " << s.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << c.repro();
  const std::vector<float> got = download_out(c, t);
  const std::vector<float> lse = download_lse(t);
  check_against_reference(c, in, got, c.lse ? &lse : nullptr);
}

std::unique_ptr<CudnnSdpa> make_sdpa() {
  auto r = CudnnSdpa::create();
  if (!r.is_ok()) {
    ADD_FAILURE() << r.status().to_string();
    return nullptr;
  }
  return std::move(r).value();
}

}  // namespace

TEST(CudnnSdpa, VersionCheckPasses) {
  auto r = CudnnSdpa::create();
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_GE(CudnnSdpa::version(), kCudnnSdpaMinVersion);
  std::printf("  cudnnGetVersion() = %d; %s\n", CudnnSdpa::version(), (*r)->describe().c_str());
}

TEST(CudnnSdpa, MatchesCpuReference) {
  auto sdpa = make_sdpa();
  ASSERT_TRUE(sdpa);
  uint64_t seed = 100;
  for (DeviceDType dt : {DeviceDType::bf16, DeviceDType::f16}) {
    for (int hd : {64, 128}) {
      // (L, Lk, NH): single token, text-like, tile-unaligned, long unaligned, cross-attention both ways.
      const int64_t shapes[][3] = {{1, 0, 1}, {77, 0, 12}, {1000, 0, 12}, {4096 + 33, 0, 12},
                                   {1000, 512, 12}, {77, 1000, 1}, {1, 4096 + 33, 12}};
      for (const auto& sh : shapes) {
        Case c;
        c.L = sh[0];
        c.Lk = sh[1];
        c.NH = static_cast<int>(sh[2]);
        c.HD = hd;
        c.dtype = dt;
        c.seed = seed++;
        run_case(*sdpa, c);
      }
    }
  }
  std::printf("  %s\n", sdpa->describe().c_str());
}

TEST(CudnnSdpa, SharpSoftmaxAndNoLse) {
  auto sdpa = make_sdpa();
  ASSERT_TRUE(sdpa);
  Case c;
  c.L = 1000;
  c.NH = 12;
  c.HD = 128;
  c.q_gain = 4.f;  // scores with std 4: a few keys dominate each row
  c.seed = 7;
  run_case(*sdpa, c);
  c.lse = false;  // the plan without the STATS output
  c.dtype = DeviceDType::f16;
  c.q_gain = 1.f;
  c.seed = 8;
  run_case(*sdpa, c);
}

TEST(CudnnSdpa, StreamAndCachedPlanGiveSameBits) {
  auto sdpa = make_sdpa();
  ASSERT_TRUE(sdpa);
  Case c;
  c.L = 777;
  c.NH = 4;
  c.HD = 128;
  const Inputs in = make_inputs(c);
  DeviceTensors a = upload(c, in), b = upload(c, in);
  ASSERT_TRUE(sdpa->forward(call_of(c, a)).is_ok());
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  DeviceQKV call = call_of(c, b);
  call.stream = stream;
  Status s = sdpa->forward(call);  // the cached plan, on another stream
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaStreamDestroy(stream);
  EXPECT_EQ(download_out(c, a), download_out(c, b));
  EXPECT_EQ(download_lse(a), download_lse(b));
  auto info = sdpa->plan_info(call);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  std::printf("  plan for %s: %s\n", c.repro().c_str(), info->c_str());
}

TEST(CudnnSdpa, UnsupportedShapesAndBadArguments) {
  auto sdpa = make_sdpa();
  ASSERT_TRUE(sdpa);
  Case c;
  c.L = 64;
  c.NH = 2;
  c.HD = 100;
  const Inputs in = make_inputs(c);
  DeviceTensors t = upload(c, in);
  Status s = sdpa->forward(call_of(c, t));
  EXPECT_EQ(s.code(), StatusCode::unsupported) << s.to_string();
  EXPECT_NE(s.message().find("multiple of 8"), std::string::npos) << s.message();

  DeviceQKV big = call_of(c, t);
  big.HD = 264;  // multiple of 8 but above 256 (sizes only; rejected before any memory is read)
  big.NH = 1;
  s = sdpa->forward(big);
  EXPECT_EQ(s.code(), StatusCode::unsupported) << s.to_string();
  EXPECT_NE(s.message().find("256"), std::string::npos) << s.message();

  DeviceQKV null_q = call_of(c, t);
  null_q.q = nullptr;
  EXPECT_EQ(sdpa->forward(null_q).code(), StatusCode::invalid_argument);
  DeviceQKV misaligned = call_of(c, t);
  misaligned.HD = 32;
  misaligned.k = static_cast<const char*>(misaligned.k) + 2;
  s = sdpa->forward(misaligned);
  EXPECT_EQ(s.code(), StatusCode::invalid_argument) << s.to_string();
  DeviceQKV no_tokens = call_of(c, t);
  no_tokens.L = 0;
  EXPECT_EQ(sdpa->forward(no_tokens).code(), StatusCode::invalid_argument);
}

TEST(DenseMethod, ForwardDeviceMatchesReference) {
  auto m = make_attention("dense", nlohmann::json(), ModelInfo{});
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  Case c;
  c.L = 3 * 7 * 11 + 5;  // grid 3x7x11 plus 5 text tokens
  c.NH = 12;
  c.HD = 128;
  c.seed = 42;
  const Inputs in = make_inputs(c);
  DeviceTensors t = upload(c, in);
  AttentionCall call;
  call.grid = {3, 7, 11};
  call.text_len = 5;
  Status s = (*m)->forward_device(call, call_of(c, t));
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> got = download_out(c, t);
  const std::vector<float> lse = download_lse(t);
  check_against_reference(c, in, got, &lse);

  // The same call through the CPU path of the same method object.
  std::vector<float> cpu(got.size());
  ASSERT_TRUE((*m)->forward(call, in.q.data(), in.k.data(), in.v.data(), c.L, c.NH, c.HD, cpu.data()).is_ok());
  double d = 0;
  for (size_t i = 0; i < cpu.size(); ++i) d = std::max(d, std::fabs(static_cast<double>(cpu[i]) - got[i]));
  EXPECT_LE(d, 2 * eps_of(c.dtype)) << "GPU vs CPU path of the dense method";

  AttentionCall wrong = call;
  wrong.text_len = 0;
  s = (*m)->forward_device(wrong, call_of(c, t));
  EXPECT_EQ(s.code(), StatusCode::invalid_argument) << s.to_string();
}

// Not an assertion: time of the fused SDPA at the Wan2.1 self-attention shapes (random uniform inputs,
// median of 7 after 2 warm-ups, rotated over 3 input sets so L2 does not flatter), as the peers measure it.
TEST(CudnnSdpaBench, WanShapes) {
  auto sdpa = make_sdpa();
  ASSERT_TRUE(sdpa);
  struct Shape {
    const char* name;
    int64_t L;
    int NH;
    bool lse;
  };
  const Shape shapes[] = {{"wan2.1-1.3b 480p", 32760, 12, false},
                          {"wan2.1-1.3b 480p +lse", 32760, 12, true},
                          {"h12 s32768", 32768, 12, false},
                          {"wan2.1-14b 720p", 75600, 40, false}};
  for (const Shape& sh : shapes) {
    const int HD = 128;
    const int64_t n = sh.L * sh.NH * HD;
    std::vector<DeviceBuffer> bufs;
    for (int i = 0; i < 3 * 3 + 1; ++i) {
      auto b = DeviceBuffer::allocate(static_cast<size_t>(n) * 2);
      ASSERT_TRUE(b.is_ok()) << b.status().to_string();
      bufs.push_back(std::move(b).value());
      if (i < 9) {
        ASSERT_EQ(launch_fill_uniform_16(bufs.back().data(), n, 1000 + i, true), 0);
      }
    }
    auto lse = DeviceBuffer::allocate(static_cast<size_t>(sh.NH) * sh.L * 4);
    ASSERT_TRUE(lse.is_ok());
    auto call = [&](int rot) {
      DeviceQKV a;
      a.q = bufs[3 * rot].data();
      a.k = bufs[3 * rot + 1].data();
      a.v = bufs[3 * rot + 2].data();
      a.out = bufs[9].data();
      a.lse = sh.lse ? lse->as<float>() : nullptr;
      a.L = sh.L;
      a.NH = sh.NH;
      a.HD = HD;
      return a;
    };
    for (int w = 0; w < 2; ++w) ASSERT_TRUE(sdpa->forward(call(w % 3)).is_ok());
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    std::vector<float> ms;
    for (int r = 0; r < 7; ++r) {
      cudaEventRecord(e0);
      Status s = sdpa->forward(call(r % 3));
      cudaEventRecord(e1);
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      cudaEventSynchronize(e1);
      float t = 0;
      cudaEventElapsedTime(&t, e0, e1);
      ms.push_back(t);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    std::sort(ms.begin(), ms.end());
    const double med = ms[ms.size() / 2];
    const double tflops = 4.0 * sh.L * sh.L * HD * sh.NH / (med * 1e-3) / 1e12;
    auto info = sdpa->plan_info(call(0));
    std::printf("  BENCH cudnn_sdpa %-24s L=%lld NH=%d HD=%d bf16: %.3f ms, %.1f TFLOP/s (min %.3f ms; %s)\n", sh.name,
                static_cast<long long>(sh.L), sh.NH, HD, med, tflops, ms.front(),
                info.is_ok() ? info->c_str() : info.status().to_string().c_str());
  }
}
