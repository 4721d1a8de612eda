// Small host-side helpers of the GPU planners that need the CUDA runtime: stream synchronization (used only
// when statistics are requested, to time a call) and async copies/fills of planner buffers. Builds without
// CUDA get `unsupported` from every function (device_sync_no_cuda.cpp).
#pragma once

#include <cstddef>

#include "dit/core/status.h"

namespace vdit::attn {

// cudaStreamSynchronize(stream) (null = the default stream).
Status device_stream_sync(void* stream);
// cudaMemcpyAsync device→host / host→device / device→device on `stream` (not synchronized).
Status device_copy_to_host_async(void* dst, const void* src, size_t bytes, void* stream);
Status device_copy_from_host_async(void* dst, const void* src, size_t bytes, void* stream);
Status device_copy_async(void* dst, const void* src, size_t bytes, void* stream);
// cudaMemsetAsync(dst, 0, bytes) on `stream`.
Status device_zero_async(void* dst, size_t bytes, void* stream);

}  // namespace vdit::attn
