// ConvEngine on cuDNN's legacy convolution API (cudnnConvolutionForward), NHWC / NDHWC tensors. fp32 mode
// sets CUDNN_FMA_MATH on every descriptor, so no TF32 tensor-core kernel can run; tf32 and bf16 modes take
// whatever math type the fastest measured candidate used (bf16 computes in fp32). Candidates come from
// cuDNN's heuristic and are timed on the first call's buffers; those needing more than kMaxWorkspace bytes of
// workspace are skipped.
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <sstream>

#include "dit/core/check_cuda.h"
#include "dit/core/check_cudnn.h"
#include "dit/vae/vae_conv_cuda.h"

namespace vdit::vae::cuda {
namespace {

constexpr size_t kMaxWorkspace = size_t{2} << 30;  // 2 GiB: FFT-style algorithms can ask for far more

cudnnHandle_t as_handle(void* h) { return static_cast<cudnnHandle_t>(h); }

const char* math_name(cudnnMathType_t m) {
  switch (m) {
    case CUDNN_DEFAULT_MATH: return "default";
    case CUDNN_TENSOR_OP_MATH: return "tensor-op";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "tensor-op-conv";
    case CUDNN_FMA_MATH: return "fma";
  }
  return "?";
}

}  // namespace

struct ConvEngine::Plan {
  ConvShape shape;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  cudnnMathType_t math = CUDNN_FMA_MATH;
  bool per_tap = false;  // kt = 3 only: run as three 2D convs (see ConvEngine::run_per_tap)
  std::string fallback;  // why per_tap was chosen when it was not asked for
  size_t ws = 0;
  float ms = 0;
  ~Plan() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
};

Result<std::unique_ptr<ConvEngine>> ConvEngine::create(ConvPrecision precision, void* stream, bool per_tap) {
  std::unique_ptr<ConvEngine> e(new ConvEngine());
  cudnnHandle_t h = nullptr;
  VDIT_CHECK(cudnnCreate(&h));
  e->handle_ = h;
  e->stream_ = stream;
  e->precision_ = precision;
  e->per_tap_ = per_tap;
  VDIT_CHECK(cudnnSetStream(h, static_cast<cudaStream_t>(stream)));
  for (void*& ev : e->events_) {
    cudaEvent_t c = nullptr;
    VDIT_CHECK(cudaEventCreate(&c));
    ev = c;
  }
  return e;
}

ConvEngine::~ConvEngine() {
  plans_.clear();
  for (void* ev : events_) {
    if (ev) cudaEventDestroy(static_cast<cudaEvent_t>(ev));
  }
  if (handle_) cudnnDestroy(as_handle(handle_));
}

// The descriptors of plan `p` (shape p->shape) for this engine's precision, math type FMA (exact fp32) or
// default (TF32 / bf16 tensor cores allowed).
Status ConvEngine::describe_plan(Plan* p) const {
  const ConvShape& s = p->shape;
  VDIT_CHECK(cudnnCreateTensorDescriptor(&p->x));
  VDIT_CHECK(cudnnCreateTensorDescriptor(&p->y));
  VDIT_CHECK(cudnnCreateFilterDescriptor(&p->w));
  VDIT_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
  const int ci = static_cast<int>(s.ci), co = static_cast<int>(s.co), kt = static_cast<int>(s.kt);
  const int kh = static_cast<int>(s.kh), kw = static_cast<int>(s.kw);
  const int H = static_cast<int>(s.H), W = static_cast<int>(s.W);
  const cudnnDataType_t dt = precision_ == ConvPrecision::bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  if (s.kt == 1) {
    VDIT_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, dt, 1, ci, H, W));
    VDIT_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, dt, 1, co, H, W));
    VDIT_CHECK(cudnnSetFilter4dDescriptor(p->w, dt, CUDNN_TENSOR_NHWC, co, ci, kh, kw));
    VDIT_CHECK(cudnnSetConvolution2dDescriptor(p->conv, (kh - 1) / 2, (kw - 1) / 2, 1, 1, 1, 1,
                                               CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  } else {
    const int xd[5] = {1, ci, kt, H, W}, yd[5] = {1, co, 1, H, W}, wd[5] = {co, ci, kt, kh, kw};
    const int pad[3] = {0, (kh - 1) / 2, (kw - 1) / 2}, one[3] = {1, 1, 1};
    VDIT_CHECK(cudnnSetTensorNdDescriptorEx(p->x, CUDNN_TENSOR_NHWC, dt, 5, xd));
    VDIT_CHECK(cudnnSetTensorNdDescriptorEx(p->y, CUDNN_TENSOR_NHWC, dt, 5, yd));
    VDIT_CHECK(cudnnSetFilterNdDescriptor(p->w, dt, CUDNN_TENSOR_NHWC, 5, wd));
    VDIT_CHECK(cudnnSetConvolutionNdDescriptor(p->conv, 3, pad, one, one, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  }
  const bool exact = precision_ == ConvPrecision::fp32;
  VDIT_CHECK(cudnnSetConvolutionMathType(p->conv, exact ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH));
  return Status::ok();
}

Status ConvEngine::ensure_workspace(size_t bytes) {
  if (bytes <= workspace_.size()) return Status::ok();
  // Work already queued may still use the old workspace.
  VDIT_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)));
  workspace_ = DeviceBuffer();
  VDIT_ASSIGN(workspace_, DeviceBuffer::allocate(bytes));
  return Status::ok();
}

// cuDNN's heuristic ranks the algorithms without running them; the first kCandidates that fit (and, in exact
// mode, are not tensor-op algorithms) are each run once as a warm-up and then timed over kTimedRuns runs with CUDA events on
// the call's own buffers (y is overwritten; the caller computes it afterwards). The fastest is kept. This
// costs one synchronization per new shape and avoids cudnnFind's runs of every algorithm on its own
// (sometimes multi-GiB) scratch.
Status ConvEngine::choose_algorithm(Plan* p, void* y, const void* x, const void* w) {
  constexpr int kCandidates = 5, kTimedRuns = 2;
  const bool exact = precision_ == ConvPrecision::fp32;
  constexpr int kRequested = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  cudnnConvolutionFwdAlgoPerf_t perf[kRequested];
  int returned = 0;
  VDIT_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(as_handle(handle_), p->x, p->w, p->conv, p->y, kRequested,
                                                    &returned, perf));
  cudaStream_t st = static_cast<cudaStream_t>(stream_);
  const float alpha = 1.f, beta = 0.f;
  float best_ms = -1.f;
  int tried = 0;
  for (int i = 0; i < returned && tried < kCandidates; ++i) {
    const auto& r = perf[i];
    // Exact mode: tensor-op candidates are skipped; the others run under the descriptor's FMA math type.
    const bool tensor_op = r.mathType == CUDNN_TENSOR_OP_MATH || r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    if (r.status != CUDNN_STATUS_SUCCESS || (exact && tensor_op)) continue;
    const cudnnMathType_t math = exact ? CUDNN_FMA_MATH : r.mathType;
    if (cudnnSetConvolutionMathType(p->conv, math) != CUDNN_STATUS_SUCCESS) continue;
    size_t ws = 0;
    if (cudnnGetConvolutionForwardWorkspaceSize(as_handle(handle_), p->x, p->w, p->conv, p->y, r.algo, &ws) !=
            CUDNN_STATUS_SUCCESS ||
        ws > kMaxWorkspace) {
      continue;
    }
    VDIT_TRY(ensure_workspace(ws));
    ++tried;
    // An algorithm the heuristic offers may still refuse this shape: skip it.
    if (cudnnConvolutionForward(as_handle(handle_), &alpha, p->x, x, p->w, w, p->conv, r.algo, workspace_.data(), ws,
                                &beta, p->y, y) != CUDNN_STATUS_SUCCESS) {
      continue;
    }
    VDIT_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(events_[0]), st));
    for (int k = 0; k < kTimedRuns; ++k) {
      VDIT_CHECK(cudnnConvolutionForward(as_handle(handle_), &alpha, p->x, x, p->w, w, p->conv, r.algo,
                                         workspace_.data(), ws, &beta, p->y, y));
    }
    VDIT_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(events_[1]), st));
    VDIT_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(events_[1])));
    float ms = 0;
    VDIT_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(events_[0]), static_cast<cudaEvent_t>(events_[1])));
    ms /= kTimedRuns;
    if (best_ms < 0 || ms < best_ms) {
      best_ms = ms;
      p->algo = r.algo, p->math = math, p->ws = ws, p->ms = ms;
    }
  }
  if (best_ms < 0) {
    const ConvShape& s = p->shape;
    return unsupported(strfmt("cuDNN has no %s convolution algorithm for ci=%lld co=%lld k=%lldx%lldx%lld at %lldx%lld "
                              "within %zu MiB of workspace",
                              exact ? "exact fp32 (FMA)" : precision_ == ConvPrecision::bf16 ? "bf16" : "fp32/TF32",
                              (long long)s.ci, (long long)s.co, (long long)s.kt, (long long)s.kh, (long long)s.kw,
                              (long long)s.H, (long long)s.W, kMaxWorkspace >> 20));
  }
  VDIT_CHECK(cudnnSetConvolutionMathType(p->conv, p->math));
  return Status::ok();
}

Result<ConvEngine::Plan*> ConvEngine::plan_for(const ConvShape& s, void* y, const void* x, const void* w) {
  const Key key{s.ci, s.co, s.kt, s.kh, s.kw, s.H, s.W};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second.get();
  if (s.ci < 1 || s.co < 1 || s.H < 1 || s.W < 1 || (s.kt != 1 && s.kt != 3) || s.kh % 2 == 0 || s.kw % 2 == 0) {
    return invalid_argument(strfmt("VAE conv: unsupported shape ci=%lld co=%lld k=%lldx%lldx%lld at %lldx%lld",
                                   (long long)s.ci, (long long)s.co, (long long)s.kt, (long long)s.kh,
                                   (long long)s.kw, (long long)s.H, (long long)s.W));
  }
  auto p = std::make_unique<Plan>();
  p->shape = s;
  if (s.kt == 3 && per_tap_) {
    p->per_tap = true;
  } else {
    Status st = describe_plan(p.get());
    if (st.is_ok()) st = choose_algorithm(p.get(), y, x, w);
    if (!st.is_ok()) {
      if (s.kt != 3) return st;
      // No usable 5D algorithm (or descriptor): three 2D convs instead.
      cudaGetLastError();
      p = std::make_unique<Plan>();
      p->shape = s;
      p->per_tap = true;
      p->fallback = st.message();
    }
  }
  Plan* raw = p.get();
  plans_.emplace(key, std::move(p));
  return raw;
}

Result<const void*> ConvEngine::tap_filters(const void* w, const ConvShape& s) {
  auto it = taps_.find(w);
  if (it != taps_.end()) return static_cast<const void*>(it->second.data());
  const size_t tap = static_cast<size_t>(s.kh * s.kw * s.ci) * esize();
  VDIT_ASSIGN(DeviceBuffer b, DeviceBuffer::allocate(3 * tap * static_cast<size_t>(s.co)));
  for (int j = 0; j < 3; ++j) {
    // Rows of [Co] with pitch 3 taps in the 5D filter -> a contiguous [Co, kh, kw, Ci] per tap.
    VDIT_CHECK(cudaMemcpy2DAsync(static_cast<char*>(b.data()) + j * tap * s.co, tap,
                                 static_cast<const char*>(w) + j * tap, 3 * tap, tap,
                                 static_cast<size_t>(s.co), cudaMemcpyDeviceToDevice,
                                 static_cast<cudaStream_t>(stream_)));
  }
  const void* d = b.data();
  taps_.emplace(w, std::move(b));
  return d;
}

Status ConvEngine::run_per_tap(void* y, const void* x, const void* w, const ConvShape& s) {
  ConvShape s2 = s;
  s2.kt = 1;
  VDIT_ASSIGN(const void* taps, tap_filters(w, s));
  VDIT_ASSIGN(Plan* p, plan_for(s2, y, x, taps));
  const size_t frame = static_cast<size_t>(s.H * s.W * s.ci) * esize();
  const size_t tap = static_cast<size_t>(s.co * s.kh * s.kw * s.ci) * esize();
  const float alpha = 1.f;
  for (int j = 0; j < 3; ++j) {
    const float beta = j == 0 ? 0.f : 1.f;
    VDIT_CHECK(cudnnConvolutionForward(as_handle(handle_), &alpha, p->x, static_cast<const char*>(x) + j * frame, p->w,
                                       static_cast<const char*>(taps) + j * tap, p->conv,
                                       p->algo, workspace_.data(), p->ws, &beta, p->y, y));
  }
  return Status::ok();
}

size_t ConvEngine::workspace_bytes() const {
  size_t n = workspace_.size();
  for (const auto& [k, b] : taps_) n += b.size();
  return n;
}

Status ConvEngine::run(void* y, const void* x, const void* w, const ConvShape& s) {
  VDIT_ASSIGN(Plan* p, plan_for(s, y, x, w));
  if (p->per_tap) return run_per_tap(y, x, w, s);
  const float alpha = 1.f, beta = 0.f;
  VDIT_CHECK(cudnnConvolutionForward(as_handle(handle_), &alpha, p->x, x, p->w, w, p->conv, p->algo,
                                     workspace_.data(), p->ws, &beta, p->y, y));
  return Status::ok();
}

std::string ConvEngine::describe() const {
  std::ostringstream os;
  for (const auto& [k, p] : plans_) {
    const ConvShape& s = p->shape;
    if (p->per_tap) {
      os << strfmt("  %lld->%lld k%lldx%lldx%lld @%lldx%lld: 3 x 2D per tap%s%s\n", (long long)s.ci, (long long)s.co,
                   (long long)s.kt, (long long)s.kh, (long long)s.kw, (long long)s.H, (long long)s.W,
                   p->fallback.empty() ? "" : " (5D: ", p->fallback.empty() ? "" : (p->fallback + ")").c_str());
      continue;
    }
    const double flop = 2.0 * s.ci * s.co * s.kt * s.kh * s.kw * s.H * s.W;
    os << strfmt("  %lld->%lld k%lldx%lldx%lld @%lldx%lld: algo %d (%s), %.3f ms = %.1f TFLOP/s, ws %.1f MiB\n",
                 (long long)s.ci, (long long)s.co, (long long)s.kt, (long long)s.kh, (long long)s.kw, (long long)s.H,
                 (long long)s.W, static_cast<int>(p->algo), math_name(p->math), p->ms,
                 p->ms > 0 ? flop / (p->ms * 1e9) : 0.0, p->ws / 1048576.0);
  }
  return os.str();
}

}  // namespace vdit::vae::cuda
