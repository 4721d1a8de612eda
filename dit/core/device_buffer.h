// Owning device (GPU) memory: a move-only buffer allocated with cudaMalloc and freed on destruction, and
// host<->device copies, all returning Status (out-of-memory names the size and what to try). In builds
// without CUDA every call returns `unsupported`. This is the only place the core allocates GPU memory.
#pragma once

#include <cstddef>

#include "dit/core/status.h"

namespace vdit {

// Number of CUDA devices visible to this process (0 in builds without CUDA or without a GPU).
int cuda_device_count();

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  static Result<DeviceBuffer> allocate(size_t bytes);

  void* data() const { return data_; }
  size_t size() const { return size_; }
  template <class T> T* as() const { return static_cast<T*>(data_); }

  // Synchronous copies of `bytes` (≤ size()) from/to host memory.
  Status copy_from_host(const void* src, size_t bytes);
  Status copy_to_host(void* dst, size_t bytes) const;

 private:
  void release();
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace vdit
