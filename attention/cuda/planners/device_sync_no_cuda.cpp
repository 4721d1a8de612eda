// device_sync.h in builds without CUDA: says what is missing.
#include "attention/cuda/planners/device_sync.h"

namespace vdit::attn {

Status device_stream_sync(void*) {
  return unsupported("GPU attention needs a vdit build with CUDA (-DVDIT_CUDA=ON)");
}

}  // namespace vdit::attn
