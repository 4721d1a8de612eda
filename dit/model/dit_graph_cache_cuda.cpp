// DitGraphRunner (dit_graph_cache.h): stream capture in thread-local mode (other threads may allocate while
// the model captures), instantiation, LRU bookkeeping and the eager fallback. Every path that begins a capture
// ends it and clears the error capture left behind, so the stream is never left capturing.
#include "dit/model/dit_graph_cache.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "dit/core/check_cuda.h"

namespace vdit::model {
namespace {

Status cuda_status(cudaError_t e, const char* expr) {
  return e == cudaSuccess ? Status::ok() : call_failure(e, expr, __FILE__, __LINE__);
}

// Captures `enqueue` on `stream` into *exec. On failure *exec stays null, the capture is over and the error it
// left is cleared.
Status capture(cudaGraphExec_t* exec, cudaStream_t stream, const std::function<Status()>& enqueue) {
  *exec = nullptr;
  cudaError_t e = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return cuda_status(e, "cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal)");
  }
  const Status work = enqueue();  // on failure the capture is still open: end it below in every case
  cudaGraph_t graph = nullptr;
  e = cudaStreamEndCapture(stream, &graph);
  cudaGetLastError();  // an illegal call inside the capture leaves its error behind
  if (!work.is_ok() || e != cudaSuccess || !graph) {
    if (graph) cudaGraphDestroy(graph);
    if (!work.is_ok()) return work.with_context("capturing the forward into a CUDA graph");
    if (e != cudaSuccess) return cuda_status(e, "cudaStreamEndCapture (the capture was invalidated)");
    return internal_error("cudaStreamEndCapture returned no graph");
  }
  e = cudaGraphInstantiate(exec, graph, 0);
  cudaGraphDestroy(graph);
  if (e != cudaSuccess) {
    cudaGetLastError();
    *exec = nullptr;
    return cuda_status(e, "cudaGraphInstantiate");
  }
  return Status::ok();
}

void destroy(void* exec) {
  if (exec) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec));
}

}  // namespace

DitGraphRunner::~DitGraphRunner() { clear(); }

void DitGraphRunner::clear() {
  for (Entry& e : entries_) destroy(e.exec);
  entries_.clear();
}

void DitGraphRunner::set_enabled(bool enabled) {
  enabled_ = enabled;
  if (enabled) {
    info_.failure.clear();
  } else {
    clear();
  }
}

CudaDitGraphInfo DitGraphRunner::info() const {
  CudaDitGraphInfo i = info_;
  i.enabled = enabled_;
  i.cached_graphs = std::count_if(entries_.begin(), entries_.end(), [](const Entry& e) { return e.exec != nullptr; });
  return i;
}

DitGraphRunner::Entry* DitGraphRunner::find(const DitGraphKey& key) {
  for (Entry& e : entries_) {
    if (e.key == key) {
      e.last_use = ++tick_;
      return &e;
    }
  }
  return nullptr;
}

void DitGraphRunner::remember_warmed(const DitGraphKey& key) {
  if (find(key)) return;
  if (entries_.size() >= kCapacity) {
    auto lru = std::min_element(entries_.begin(), entries_.end(),
                                [](const Entry& a, const Entry& b) { return a.last_use < b.last_use; });
    destroy(lru->exec);  // no launch is in flight: every forward synchronizes before it returns
    entries_.erase(lru);
  }
  entries_.push_back({key, nullptr, ++tick_});
}

Status DitGraphRunner::eager(const std::function<Status()>& enqueue) {
  ++info_.eager_forwards;
  return enqueue();
}

Status DitGraphRunner::give_up_and_run_eagerly(const Status& why, const std::function<Status()>& enqueue) {
  info_.failure = why.message();
  clear();
  return eager(enqueue);
}

Status DitGraphRunner::run(const std::function<DitGraphKey()>& make_key, void* stream_ptr,
                           const std::function<Status()>& enqueue) {
  info_.last_used_graph = false;
  if (!make_key || !enabled_ || !info_.failure.empty()) return eager(enqueue);
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  const DitGraphKey key = make_key();
  Entry* entry = find(key);
  if (!entry) {  // warm-up: plans, autotuning and workspace growth happen here, outside any capture
    VDIT_TRY(eager(enqueue));
    remember_warmed(make_key());
    return Status::ok();
  }
  if (!entry->exec) {
    cudaGraphExec_t exec = nullptr;
    Status st = capture(&exec, stream, enqueue);
    if (st.is_ok() && !(make_key() == key)) {
      destroy(exec);  // the attention's resources changed while capturing: the graph may point at freed memory
      st = internal_error("the self-attention's device resources changed during capture (it is not graph-safe)");
    }
    if (!st.is_ok()) return give_up_and_run_eagerly(st.with_context("CUDA graph capture"), enqueue);
    entry->exec = exec;
    ++info_.captures;
  }
  const cudaError_t e = cudaGraphLaunch(static_cast<cudaGraphExec_t>(entry->exec), stream);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return give_up_and_run_eagerly(cuda_status(e, "cudaGraphLaunch"), enqueue);
  }
  ++info_.launches;
  info_.last_used_graph = true;
  return Status::ok();
}

}  // namespace vdit::model
