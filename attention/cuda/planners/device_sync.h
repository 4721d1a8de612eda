// Stream synchronization for the GPU attention path, callable from files that do not include CUDA headers
// (attention/methods/method.cpp): used only when statistics are requested, to time a call. Builds without
// CUDA get `unsupported` (device_sync_no_cuda.cpp).
#pragma once

#include "dit/core/status.h"

namespace vdit::attn {

// cudaStreamSynchronize(stream) (null = the default stream).
Status device_stream_sync(void* stream);

}  // namespace vdit::attn
