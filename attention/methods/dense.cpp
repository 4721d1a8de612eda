// The "dense" method: exact attention on every call (the baseline every sparse method is compared with).
// It reads only the common keys; its schedule is irrelevant because every call is dense anyway. On the GPU
// (forward_device) it runs cuDNN's fused SDPA (attention/cuda/cudnn_sdpa.h); it has no kernel of its own.
// Its GPU path keeps no per-call host state (no statistics, no call record), so once a shape has run it only
// enqueues cuDNN work and may be captured into the CUDA DiT's graphs (device_graph_safe).
#include <atomic>
#include <memory>
#include <set>
#include <tuple>

#include "attention/cuda/cudnn_sdpa.h"
#include "attention/methods/method.h"

namespace vdit::attn {
namespace {

// Process-wide source of device_graph_epoch() values: every value is used once.
uint64_t next_graph_epoch() {
  static std::atomic<uint64_t> counter{0};
  return ++counter;
}

class DenseMethod : public AttentionMethod {
 public:
  Status forward_device(const AttentionCall& call, const DeviceQKV& qkv) override {
    const int64_t expect = call.grid.tokens() + call.text_len;
    if (qkv.L != expect) {
      return invalid_argument(strfmt("attention (%s, GPU): %lld tokens, but grid %lldx%lldx%lld + %lld text tokens = "
                                     "%lld; pass the grid of the latent video and the text length",
                                     name(), static_cast<long long>(qkv.L), static_cast<long long>(call.grid.f),
                                     static_cast<long long>(call.grid.h), static_cast<long long>(call.grid.w),
                                     static_cast<long long>(call.text_len), static_cast<long long>(expect)));
    }
    // A shape that has not run yet builds and times cuDNN plans and may grow (free and reallocate) the
    // workspace: graphs captured before must not be replayed afterwards.
    const ShapeKey shape{qkv.L, qkv.keys(), qkv.NH, qkv.HD, static_cast<int>(qkv.dtype), qkv.lse != nullptr};
    const bool known = shapes_run_.count(shape) > 0;
    if (!known) epoch_ = next_graph_epoch();
    if (!sdpa_) {
      auto created = CudnnSdpa::create();
      if (!created.is_ok()) return created.status().with_context("dense attention on the GPU");
      sdpa_ = std::move(created).value();
    }
    VDIT_TRY(sdpa_->forward(qkv));
    if (!known) shapes_run_.insert(shape);
    return Status::ok();
  }

  // Every call is the same cuDNN SDPA once its shape has run (the DiT warms each graph key eagerly first).
  bool device_graph_safe(const AttentionCall&) const override { return true; }
  uint64_t device_graph_epoch() const override { return epoch_; }

 protected:
  Status configure_method(ConfigReader&) override { return Status::ok(); }
  bool is_dense(const AttentionCall&) const override { return true; }

 private:
  using ShapeKey = std::tuple<int64_t, int64_t, int, int, int, bool>;  // L, Lk, NH, HD, dtype, lse
  std::unique_ptr<CudnnSdpa> sdpa_;  // created on the first GPU call (needs a device)
  std::set<ShapeKey> shapes_run_;    // shapes whose plans and workspace are in place
  uint64_t epoch_ = next_graph_epoch();
};

}  // namespace
}  // namespace vdit::attn

VDIT_REGISTER_ATTENTION_METHOD(dense, "exact dense attention (CPU: tiled online softmax; GPU: cuDNN SDPA)",
                               vdit::attn::DenseMethod);
