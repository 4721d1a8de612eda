// CUDA graphs of the CUDA DiT forward's device work (wan_dit_cuda.cpp): for each key the first forward runs
// eagerly (it builds every cuBLASLt/cuDNN plan and grows workspaces, which capture forbids), the second is
// captured on the model's stream and instantiated, later ones launch the graph. A small LRU cache holds the
// keys; a failed capture, instantiation or launch falls back to the eager forward and gives graphs up for the
// model. Knows nothing of the model: the caller passes the work as a function. No CUDA headers here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dit/core/status.h"
#include "dit/model/wan_dit_cuda.h"

namespace vdit::model {

// What captured work depends on besides the model's own buffers (the arena of the shape, weights, handles):
// the latent grid, the text conditioning's cross-attention keys/values and the self-attention object with
// the state of its device resources (attn::SelfAttention::device_graph_epoch).
struct DitGraphKey {
  int64_t F = 0, H = 0, W = 0;
  const void* text_k = nullptr;
  const void* text_v = nullptr;
  const void* attention = nullptr;
  uint64_t attention_epoch = 0;

  bool operator==(const DitGraphKey& o) const {
    return F == o.F && H == o.H && W == o.W && text_k == o.text_k && text_v == o.text_v &&
           attention == o.attention && attention_epoch == o.attention_epoch;
  }
};

class DitGraphRunner {
 public:
  // Keys remembered (warmed or captured); the least recently used one is dropped beyond this. CFG alternates
  // two keys per shape; 4 leaves room for a stale attention epoch or a second prompt.
  static constexpr size_t kCapacity = 4;

  DitGraphRunner() = default;
  ~DitGraphRunner();  // destroys the executable graphs; the caller has synchronized their stream
  DitGraphRunner(const DitGraphRunner&) = delete;
  DitGraphRunner& operator=(const DitGraphRunner&) = delete;

  // Runs one forward's device work `enqueue` (it only enqueues on `stream`, a cudaStream_t) eagerly or as a
  // graph. `make_key` null: eagerly (a stage recorder, or attention that is not graph-safe). Otherwise it
  // gives the key as of now; it is called again after an eager warm-up, whose plan building may change it.
  // Does not synchronize. An error of the work itself is returned as is.
  Status run(const std::function<DitGraphKey()>& make_key, void* stream, const std::function<Status()>& enqueue);

  // Drops every graph (the buffers they were captured on are about to be freed or moved). Counters stay.
  void clear();
  // Off: forwards run eagerly and the graphs are freed. On: graphs are tried again, also after a failure.
  void set_enabled(bool enabled);
  CudaDitGraphInfo info() const;

 private:
  struct Entry {
    DitGraphKey key;
    void* exec = nullptr;  // cudaGraphExec_t; null while the key has only been warmed
    uint64_t last_use = 0;
  };
  Entry* find(const DitGraphKey& key);
  void remember_warmed(const DitGraphKey& key);
  Status eager(const std::function<Status()>& enqueue);
  Status give_up_and_run_eagerly(const Status& why, const std::function<Status()>& enqueue);

  std::vector<Entry> entries_;
  uint64_t tick_ = 0;
  bool enabled_ = true;
  CudaDitGraphInfo info_;  // counters, last_used_graph and failure (enabled and cached_graphs are filled by info())
};

}  // namespace vdit::model
