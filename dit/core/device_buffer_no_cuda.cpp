// DeviceBuffer in builds without CUDA: every allocation says so.
#include "dit/core/device_buffer.h"

namespace vdit {

int cuda_device_count() { return 0; }
DeviceMemoryUse device_memory_use() { return {}; }
void reset_device_memory_peak() {}
DeviceBuffer::~DeviceBuffer() = default;
DeviceBuffer::DeviceBuffer(DeviceBuffer&&) noexcept {}
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&&) noexcept { return *this; }
void DeviceBuffer::release() {}

Result<DeviceBuffer> DeviceBuffer::allocate(size_t bytes) {
  return unsupported("this vdit was built without CUDA (rebuild with nvcc installed and -DVDIT_CUDA=ON)");
}
Status DeviceBuffer::copy_from_host(const void*, size_t) { return unsupported("built without CUDA"); }
Status DeviceBuffer::copy_to_host(void*, size_t) const { return unsupported("built without CUDA"); }

}  // namespace vdit
