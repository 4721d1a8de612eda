// Defaults of the SelfAttention interface (attention.h) shared by every implementation.
#include "attention/attention.h"

namespace vdit::attn {

Status SelfAttention::forward_device(const AttentionCall&, const DeviceQKV&) {
  return unsupported(std::string("attention method '") + name() +
                     "' has no CUDA path yet; use --device cpu or another method");
}

}  // namespace vdit::attn
