// Owning device (GPU) memory: a move-only buffer allocated with cudaMalloc and freed on destruction, and
// host<->device copies, all returning Status (out-of-memory names the size and what to try). In builds
// without CUDA every call returns `unsupported`. This is the only place the core allocates GPU memory.
#pragma once

#include <cstddef>

#include "dit/core/status.h"

namespace vdit {

// Number of CUDA devices visible to this process (0 in builds without CUDA or without a GPU).
int cuda_device_count();

// GPU memory for stage summaries. `held`/`peak`: bytes in vdit's own DeviceBuffers now and at most since the
// last reset_device_memory_peak() (all weights, activations and workspaces: every allocation goes through
// DeviceBuffer). `device_used`/`device_total`: cudaMemGetInfo of the current device (all processes, plus the
// CUDA context and the cuBLASLt/cuDNN libraries' own memory). All zero without CUDA or a GPU.
struct DeviceMemoryUse {
  size_t held = 0;
  size_t peak = 0;
  size_t device_used = 0;
  size_t device_total = 0;
};
DeviceMemoryUse device_memory_use();
void reset_device_memory_peak();  // peak := held

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
