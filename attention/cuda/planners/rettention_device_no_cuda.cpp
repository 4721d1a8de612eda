// rettention_device.h in builds without CUDA: says what is missing.
#include "attention/cuda/planners/rettention_device.h"

namespace vdit::attn {

Status rettention_cache_update(float*, float*, const void*, const void*, const float*, const float*, int64_t, int, int,
                               DeviceDType, void*) {
  return unsupported("Re-ttention on the GPU needs a vdit build with CUDA (-DVDIT_CUDA=ON)");
}

Status rettention_rho_step(float*, int64_t, float, bool, void*) {
  return unsupported("Re-ttention on the GPU needs a vdit build with CUDA (-DVDIT_CUDA=ON)");
}

}  // namespace vdit::attn
