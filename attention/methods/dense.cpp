// The "dense" method: exact attention on every call (the baseline every sparse method is compared with).
// It reads only the common keys; its schedule is irrelevant because every call is dense anyway. On the GPU
// (forward_device) it runs cuDNN's fused SDPA (attention/cuda/cudnn_sdpa.h); it has no kernel of its own.
#include <memory>

#include "attention/cuda/cudnn_sdpa.h"
#include "attention/methods/method.h"

namespace vdit::attn {
namespace {

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
    if (!sdpa_) {
      auto created = CudnnSdpa::create();
      if (!created.is_ok()) return created.status().with_context("dense attention on the GPU");
      sdpa_ = std::move(created).value();
    }
    return sdpa_->forward(qkv);
  }

 protected:
  Status configure_method(ConfigReader&) override { return Status::ok(); }
  bool is_dense(const AttentionCall&) const override { return true; }

 private:
  std::unique_ptr<CudnnSdpa> sdpa_;  // created on the first GPU call (needs a device)
};

}  // namespace
}  // namespace vdit::attn

VDIT_REGISTER_ATTENTION_METHOD(dense, "exact dense attention (CPU: tiled online softmax; GPU: cuDNN SDPA)",
                               vdit::attn::DenseMethod);
