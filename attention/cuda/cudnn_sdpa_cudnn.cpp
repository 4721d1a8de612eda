// CudnnSdpa through cuDNN's backend C API (no cudnn-frontend): five tensor descriptors (Q, K, V, O in
// token-major BSHD layout with b = 1, and the softmax scale as a by-value host float), an optional STATS
// descriptor for the LSE, one SDPA_FWD operation, an operation graph and heuristic mode A. Every engine config
// that finalizes becomes a candidate plan; on the first call of a shape each candidate runs a few times on the
// call's own tensors (CUDA events, one synchronization) and the fastest is kept. Plans are cached per shape.
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include "attention/cuda/cudnn_sdpa.h"
#include "dit/core/check_cuda.h"
#include "dit/core/check_cudnn.h"
#include "dit/core/device_buffer.h"

// VDIT_CHECK for cuDNN calls while building and running plans: the same expression/file/line message, plus
// `what` (a std::string expression, evaluated only on failure) and cuDNN's own last error text.
#define VDIT_SDPA_CHECK(expr, what)                                                          \
  do {                                                                                       \
    cudnnStatus_t vdit_rc_ = (expr);                                                         \
    if (vdit_rc_ != CUDNN_STATUS_SUCCESS) return explain(vdit_rc_, #expr, __LINE__, (what)); \
  } while (0)

namespace vdit::attn {
namespace {

// Tensor ids in the operation graph and the variant pack.
enum : int64_t { kUidQ = 1, kUidK = 2, kUidV = 3, kUidO = 4, kUidScale = 5, kUidStats = 6 };

Status cuda_ok(cudaError_t e, const char* what) {
  return e == cudaSuccess ? Status::ok() : call_failure(e, what, __FILE__, __LINE__);
}

std::string version_string(int v) { return strfmt("%d.%d.%d", v / 10000, (v % 10000) / 100, v % 100); }

// cuDNN's own explanation of the last failure (empty when it has none).
std::string last_cudnn_message() {
  char buf[2048] = {};
  cudnnGetLastErrorString(buf, sizeof(buf));
  return buf;
}

// The checking helper's failure (expression, file, line) plus what was being done and cuDNN's own message;
// every "not supported" sub-code (shape, layout, architecture, ...) becomes `unsupported`.
Status explain(cudnnStatus_t s, const char* expr, int line, const std::string& what) {
  Status base = call_failure(s, expr, __FILE__, line);
  std::string msg = base.message() + " while " + what;
  const std::string detail = last_cudnn_message();
  if (!detail.empty()) msg += ": " + detail;
  const bool not_supported = CUDNN_STATUS_CATEGORY(s) == CUDNN_STATUS_NOT_SUPPORTED;
  return Status(not_supported ? StatusCode::unsupported : base.code(), msg);
}

// Owns one backend descriptor.
class Desc {
 public:
  Desc() = default;
  ~Desc() { reset(); }
  Desc(Desc&& o) noexcept : d_(std::exchange(o.d_, nullptr)) {}
  Desc& operator=(Desc&& o) noexcept {
    if (this != &o) {
      reset();
      d_ = std::exchange(o.d_, nullptr);
    }
    return *this;
  }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;

  static Result<Desc> make(cudnnBackendDescriptorType_t type) {
    Desc d;
    VDIT_SDPA_CHECK(cudnnBackendCreateDescriptor(type, &d.d_),
                    strfmt("creating descriptor type %d", static_cast<int>(type)));
    return d;
  }
  cudnnBackendDescriptor_t get() const { return d_; }

  Status set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count, const void* value) {
    VDIT_SDPA_CHECK(cudnnBackendSetAttribute(d_, name, type, count, value),
                    strfmt("setting attribute %d", static_cast<int>(name)));
    return Status::ok();
  }
  Status set_desc(cudnnBackendAttributeName_t name, const Desc& value) {
    cudnnBackendDescriptor_t v = value.get();
    return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &v);
  }
  Status set_int(cudnnBackendAttributeName_t name, int64_t value) { return set(name, CUDNN_TYPE_INT64, 1, &value); }
  Status finalize(const char* what) {
    VDIT_SDPA_CHECK(cudnnBackendFinalize(d_), strfmt("finalizing the %s", what));
    return Status::ok();
  }

 private:
  void reset() {
    if (d_) cudnnBackendDestroyDescriptor(d_);
    d_ = nullptr;
  }
  cudnnBackendDescriptor_t d_ = nullptr;
};

// A finalized tensor descriptor: dims in cuDNN's (b, h, s, d) order with the strides of the real layout.
Result<Desc> make_tensor(int64_t uid, cudnnDataType_t type, const std::array<int64_t, 4>& dims,
                         const std::array<int64_t, 4>& strides, bool by_value) {
  VDIT_ASSIGN(Desc t, Desc::make(CUDNN_BACKEND_TENSOR_DESCRIPTOR));
  VDIT_TRY(t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type));
  VDIT_TRY(t.set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data()));
  VDIT_TRY(t.set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data()));
  VDIT_TRY(t.set_int(CUDNN_ATTR_TENSOR_UNIQUE_ID, uid));
  VDIT_TRY(t.set_int(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 16));
  if (by_value) {
    bool yes = true;
    VDIT_TRY(t.set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &yes));
  }
  VDIT_TRY(t.finalize("tensor descriptor"));
  return t;
}

// One finalized execution plan of an engine config.
struct Candidate {
  Desc plan;
  int64_t workspace = 0;
  int config_index = 0;  // position in heuristic mode A's list
  float ms = -1.f;       // median of the timed runs (-1: not timed)
};

struct Plan {
  std::vector<Candidate> candidates;  // finalized configs in heuristic order
  int chosen = 0;                     // index into candidates
  bool tuned = false;                 // candidates timed (or only one)
  int config_count = 0;               // configs the heuristic offered
  const Candidate& best() const { return candidates[static_cast<size_t>(chosen)]; }
};

using PlanKey = std::tuple<int64_t, int64_t, int, int, int, bool>;  // L, Lk, NH, HD, dtype, lse

std::string shape_string(const DeviceQKV& a) {
  return strfmt("L=%lld Lk=%lld NH=%d HD=%d %s%s", static_cast<long long>(a.L), static_cast<long long>(a.keys()), a.NH,
                a.HD, a.dtype == DeviceDType::bf16 ? "bf16" : "f16", a.lse ? " +lse" : "");
}

}  // namespace

struct CudnnSdpa::Impl {
  cudnnHandle_t handle = nullptr;
  std::map<PlanKey, Plan> plans;
  DeviceBuffer workspace;

  ~Impl() {
    plans.clear();  // plans before the handle they were built with
    if (handle) cudnnDestroy(handle);
  }

  Result<Plan*> plan_for(const DeviceQKV& a);
  Result<Plan> build(const DeviceQKV& a);
  Status execute(const Candidate& c, const DeviceQKV& a);
  Status tune(Plan* plan, const DeviceQKV& a);
};

Result<Plan> CudnnSdpa::Impl::build(const DeviceQKV& a) {
  const int64_t L = a.L, Lk = a.keys(), NH = a.NH, HD = a.HD;
  const cudnnDataType_t type = a.dtype == DeviceDType::bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
  // Token-major [s, h, d] is BSHD with b = 1: strides (s·h·d, d, h·d, 1) for dims (b, h, s, d).
  VDIT_ASSIGN(Desc q, make_tensor(kUidQ, type, {1, NH, L, HD}, {L * NH * HD, HD, NH * HD, 1}, false));
  VDIT_ASSIGN(Desc k, make_tensor(kUidK, type, {1, NH, Lk, HD}, {Lk * NH * HD, HD, NH * HD, 1}, false));
  VDIT_ASSIGN(Desc v, make_tensor(kUidV, type, {1, NH, Lk, HD}, {Lk * NH * HD, HD, NH * HD, 1}, false));
  VDIT_ASSIGN(Desc o, make_tensor(kUidO, type, {1, NH, L, HD}, {L * NH * HD, HD, NH * HD, 1}, false));
  VDIT_ASSIGN(Desc scale, make_tensor(kUidScale, CUDNN_DATA_FLOAT, {1, 1, 1, 1}, {1, 1, 1, 1}, true));
  Desc stats;
  if (a.lse) {
    // [b, h, s, 1] f32 = our lse [NH, L].
    VDIT_ASSIGN(stats, make_tensor(kUidStats, CUDNN_DATA_FLOAT, {1, NH, L, 1}, {NH * L, L, 1, 1}, false));
  }

  VDIT_ASSIGN(Desc op, Desc::make(CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR));
  VDIT_TRY(op.set_desc(CUDNN_ATTR_OPERATION_SDPA_FWD_QDESC, q));
  VDIT_TRY(op.set_desc(CUDNN_ATTR_OPERATION_SDPA_FWD_KDESC, k));
  VDIT_TRY(op.set_desc(CUDNN_ATTR_OPERATION_SDPA_FWD_VDESC, v));
  VDIT_TRY(op.set_desc(CUDNN_ATTR_OPERATION_SDPA_FWD_ODESC, o));
  VDIT_TRY(op.set_desc(CUDNN_ATTR_OPERATION_SDPA_FWD_SCALEDESC, scale));
  if (a.lse) VDIT_TRY(op.set_desc(CUDNN_ATTR_OPERATION_SDPA_FWD_STATSDESC, stats));
  VDIT_TRY(op.finalize("SDPA_FWD operation"));

  VDIT_ASSIGN(Desc graph, Desc::make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR));
  VDIT_TRY(graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle));
  cudnnBackendDescriptor_t ops[1] = {op.get()};
  VDIT_TRY(graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, ops));
  VDIT_TRY(graph.finalize("operation graph"));

  VDIT_ASSIGN(Desc heur, Desc::make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR));
  VDIT_TRY(heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph));
  cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  VDIT_TRY(heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode));
  VDIT_TRY(heur.finalize("engine heuristics"));

  int64_t count = 0;
  VDIT_SDPA_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                                           &count, nullptr),
                  "counting the heuristic's engine configs");
  if (count <= 0) {
    return unsupported("cuDNN " + version_string(version()) + " offers no SDPA engine for " + shape_string(a) +
                       "; use the CPU path or another attention kernel");
  }
  std::vector<Desc> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i) {
    VDIT_ASSIGN(Desc c, Desc::make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
    raw.push_back(c.get());
    configs.push_back(std::move(c));
  }
  int64_t returned = 0;
  VDIT_SDPA_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                           count, &returned, raw.data()),
                  "reading the heuristic's engine configs");

  std::string refusals;
  Plan p;
  p.config_count = static_cast<int>(returned);
  for (int64_t i = 0; i < returned; ++i) {
    VDIT_ASSIGN(Desc plan, Desc::make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR));
    VDIT_TRY(plan.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle));
    VDIT_TRY(plan.set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, configs[i]));
    Status fin = plan.finalize("execution plan");
    if (!fin.is_ok()) {
      refusals += strfmt("; config %lld: ", static_cast<long long>(i)) + fin.message();
      continue;
    }
    Candidate c;
    int64_t got = 0;
    VDIT_SDPA_CHECK(cudnnBackendGetAttribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1,
                                             &got, &c.workspace),
                    "reading the plan's workspace size");
    c.plan = std::move(plan);
    c.config_index = static_cast<int>(i);
    p.candidates.push_back(std::move(c));
  }
  p.tuned = p.candidates.size() <= 1;
  if (!p.candidates.empty()) return p;
  return unsupported(strfmt("cuDNN %s: none of the %lld SDPA engine configs runs ", version_string(version()).c_str(),
                            static_cast<long long>(returned)) +
                     shape_string(a) + refusals);
}

Result<Plan*> CudnnSdpa::Impl::plan_for(const DeviceQKV& a) {
  const PlanKey key{a.L, a.keys(), a.NH, a.HD, static_cast<int>(a.dtype), a.lse != nullptr};
  auto it = plans.find(key);
  if (it == plans.end()) {
    auto built = build(a);
    if (!built.is_ok()) return built.status().with_context("cuDNN SDPA plan for " + shape_string(a));
    it = plans.emplace(key, std::move(built).value()).first;
  }
  return &it->second;
}

CudnnSdpa::CudnnSdpa(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudnnSdpa::~CudnnSdpa() = default;

int CudnnSdpa::version() { return static_cast<int>(cudnnGetVersion()); }

Result<std::unique_ptr<CudnnSdpa>> CudnnSdpa::create() {
  const int v = version();
  if (v < kCudnnSdpaMinVersion) {
    return unsupported("dense GPU attention needs cuDNN >= " + version_string(kCudnnSdpaMinVersion) +
                       " (the unified SDPA_FWD operation), but the loaded libcudnn is " + version_string(v) +
                       "; install a newer cuDNN 9 or put it first in the library path");
  }
  if (cuda_device_count() == 0) return unsupported("cuDNN SDPA: no CUDA device is visible to this process");
  auto impl = std::make_unique<Impl>();
  VDIT_SDPA_CHECK(cudnnCreate(&impl->handle), "creating a cuDNN handle on the current device");
  return std::unique_ptr<CudnnSdpa>(new CudnnSdpa(std::move(impl)));
}

std::string CudnnSdpa::unsupported_reason(const DeviceQKV& a) {
  if (a.HD % 8 != 0) return strfmt("head dim %d is not a multiple of 8 (cuDNN SDPA needs HD %% 8 == 0)", a.HD);
  if (a.HD > 256) return strfmt("head dim %d is above 256, the largest cuDNN SDPA supports", a.HD);
  if (a.dtype != DeviceDType::bf16 && a.dtype != DeviceDType::f16) return "cuDNN SDPA needs bf16 or f16 tensors";
  return "";
}

Status CudnnSdpa::forward(const DeviceQKV& a) {
  if (!a.q || !a.k || !a.v || !a.out) return invalid_argument("cuDNN SDPA: null q/k/v/out pointer");
  if (a.L <= 0 || a.Lk < 0 || a.NH <= 0 || a.HD <= 0) {
    return invalid_argument(strfmt("cuDNN SDPA: bad sizes L=%lld Lk=%lld NH=%d HD=%d", static_cast<long long>(a.L),
                                   static_cast<long long>(a.Lk), a.NH, a.HD));
  }
  for (const void* p : {a.q, a.k, a.v, static_cast<const void*>(a.out), static_cast<const void*>(a.lse)}) {
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) {
      return invalid_argument("cuDNN SDPA: q/k/v/out/lse must be 16-byte aligned (pass whole allocations)");
    }
  }
  const std::string why = unsupported_reason(a);
  if (!why.empty()) return unsupported("cuDNN SDPA: " + why + " (" + shape_string(a) + ")");
  if (!(a.softmax_scale() > 0.f) || !std::isfinite(a.softmax_scale())) {
    return invalid_argument(strfmt("cuDNN SDPA: softmax scale %g is not a positive finite number", a.scale));
  }

  VDIT_ASSIGN(Plan * plan, impl_->plan_for(a));
  if (!plan->tuned) VDIT_TRY(impl_->tune(plan, a));
  return impl_->execute(plan->best(), a);
}

Status CudnnSdpa::Impl::execute(const Candidate& c, const DeviceQKV& a) {
  if (static_cast<size_t>(c.workspace) > workspace.size()) {
    workspace = DeviceBuffer();  // free first (cudaFree waits for work that may still use it)
    VDIT_ASSIGN(workspace, DeviceBuffer::allocate(static_cast<size_t>(c.workspace)));
  }
  alignas(16) float scale = a.softmax_scale();  // by value: read on the host during cudnnBackendExecute
  std::vector<int64_t> uids = {kUidQ, kUidK, kUidV, kUidO, kUidScale};
  std::vector<void*> ptrs = {const_cast<void*>(a.q), const_cast<void*>(a.k), const_cast<void*>(a.v), a.out, &scale};
  if (a.lse) {
    uids.push_back(kUidStats);
    ptrs.push_back(a.lse);
  }
  void* ws = c.workspace > 0 ? workspace.data() : nullptr;
  VDIT_ASSIGN(Desc pack, Desc::make(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR));
  const int64_t n = static_cast<int64_t>(uids.size());
  VDIT_TRY(pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids.data()));
  VDIT_TRY(pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs.data()));
  VDIT_TRY(pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws));
  VDIT_TRY(pack.finalize("variant pack"));

  VDIT_CHECK(cudnnSetStream(handle, static_cast<cudaStream_t>(a.stream)));
  VDIT_SDPA_CHECK(cudnnBackendExecute(handle, c.plan.get(), pack.get()), "executing SDPA (" + shape_string(a) + ")");
  return Status::ok();
}

// Times every candidate on the call's own tensors (1 warm-up + 3 timed runs each, median) and keeps the
// fastest; a candidate that fails to execute is skipped. Synchronizes the stream once per candidate.
Status CudnnSdpa::Impl::tune(Plan* plan, const DeviceQKV& a) {
  cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
  cudaEvent_t ev[4];
  for (auto& e : ev) VDIT_CHECK(cudaEventCreate(&e));
  Status status = Status::ok();
  float best = -1.f;
  for (size_t i = 0; i < plan->candidates.size() && status.is_ok(); ++i) {
    Candidate& c = plan->candidates[i];
    if (!execute(c, a).is_ok()) continue;  // this engine cannot run it after all: not a candidate
    std::vector<float> ms;
    for (int r = 0; r < 3 && status.is_ok(); ++r) {
      status = cuda_ok(cudaEventRecord(ev[0], stream), "cudaEventRecord");
      if (status.is_ok()) status = execute(c, a);
      if (status.is_ok()) status = cuda_ok(cudaEventRecord(ev[1], stream), "cudaEventRecord");
      if (status.is_ok()) status = cuda_ok(cudaEventSynchronize(ev[1]), "cudaEventSynchronize");
      float t = 0.f;
      if (status.is_ok()) status = cuda_ok(cudaEventElapsedTime(&t, ev[0], ev[1]), "cudaEventElapsedTime");
      ms.push_back(t);
    }
    if (!status.is_ok()) break;
    std::sort(ms.begin(), ms.end());
    c.ms = ms[ms.size() / 2];
    if (best < 0.f || c.ms < best) {
      best = c.ms;
      plan->chosen = static_cast<int>(i);
    }
  }
  for (auto& e : ev) cudaEventDestroy(e);
  VDIT_TRY(status);
  if (best < 0.f) return unsupported("cuDNN SDPA: no engine config executes " + shape_string(a));
  plan->tuned = true;
  return Status::ok();
}

std::string CudnnSdpa::describe() const {
  return strfmt("cuDNN %s fused SDPA (backend SDPA_FWD), %zu cached plan%s", version_string(version()).c_str(),
                impl_->plans.size(), impl_->plans.size() == 1 ? "" : "s");
}

Result<std::string> CudnnSdpa::plan_info(const DeviceQKV& a) {
  const std::string why = unsupported_reason(a);
  if (!why.empty()) return unsupported("cuDNN SDPA: " + why);
  VDIT_ASSIGN(Plan * plan, impl_->plan_for(a));
  std::string info = strfmt("engine config %d of %d, workspace %lld bytes", plan->best().config_index,
                            plan->config_count, static_cast<long long>(plan->best().workspace));
  if (plan->candidates.size() > 1) {
    info += plan->tuned ? "; timed:" : "; not timed yet:";
    for (const Candidate& c : plan->candidates) info += strfmt(" config %d %.3f ms", c.config_index, c.ms);
  }
  return info;
}

}  // namespace vdit::attn
