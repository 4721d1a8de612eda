// The CUDA runtime calls behind device_sync.h, each through VDIT_CHECK.
#include "attention/cuda/planners/device_sync.h"

#include "dit/core/check_cuda.h"

namespace vdit::attn {

Status device_stream_sync(void* stream) {
  VDIT_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  return Status::ok();
}

Status device_copy_to_host_async(void* dst, const void* src, size_t bytes, void* stream) {
  VDIT_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, static_cast<cudaStream_t>(stream)));
  return Status::ok();
}

Status device_copy_from_host_async(void* dst, const void* src, size_t bytes, void* stream) {
  VDIT_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream)));
  return Status::ok();
}

Status device_copy_async(void* dst, const void* src, size_t bytes, void* stream) {
  VDIT_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, static_cast<cudaStream_t>(stream)));
  return Status::ok();
}

Status device_zero_async(void* dst, size_t bytes, void* stream) {
  VDIT_CHECK(cudaMemsetAsync(dst, 0, bytes, static_cast<cudaStream_t>(stream)));
  return Status::ok();
}

}  // namespace vdit::attn
