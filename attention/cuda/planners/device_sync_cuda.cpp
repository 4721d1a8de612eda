// The CUDA runtime call behind device_sync.h, through VDIT_CHECK.
#include "attention/cuda/planners/device_sync.h"

#include "dit/core/check_cuda.h"

namespace vdit::attn {

Status device_stream_sync(void* stream) {
  VDIT_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  return Status::ok();
}

}  // namespace vdit::attn
