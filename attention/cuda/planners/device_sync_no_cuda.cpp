// device_sync.h in builds without CUDA: every call says what is missing.
#include "attention/cuda/planners/device_sync.h"

namespace vdit::attn {
namespace {
Status no_cuda() { return unsupported("GPU attention planners need a vdit build with CUDA (-DVDIT_CUDA=ON)"); }
}  // namespace

Status device_stream_sync(void*) { return no_cuda(); }
Status device_copy_to_host_async(void*, const void*, size_t, void*) { return no_cuda(); }
Status device_copy_from_host_async(void*, const void*, size_t, void*) { return no_cuda(); }
Status device_copy_async(void*, const void*, size_t, void*) { return no_cuda(); }
Status device_zero_async(void*, size_t, void*) { return no_cuda(); }

}  // namespace vdit::attn
