// Owning device (GPU) memory: a move-only buffer allocated with cudaMalloc and freed on destruction, and
// host<->device copies, all returning Status (out-of-memory names the size and what to try). In builds
// without CUDA every call returns `unsupported`. This is the only place the core allocates GPU memory.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

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

// Host-side helpers for planners' and kernels' workspaces (every size is at least 16 bytes, so a pointer is
// never null even for empty data):
// *buf := a new buffer of `bytes` (contents undefined); the old one is freed first.
inline Status reallocate(DeviceBuffer* buf, size_t bytes) {
  *buf = DeviceBuffer();
  VDIT_ASSIGN(*buf, DeviceBuffer::allocate(std::max<size_t>(16, bytes)));
  return Status::ok();
}
// Reallocates only when `buf` is smaller than `bytes` (contents are not kept).
inline Status grow(DeviceBuffer* buf, size_t bytes) {
  return buf->size() >= std::max<size_t>(16, bytes) ? Status::ok() : reallocate(buf, bytes);
}
// *buf := a new buffer holding a copy of `v` (synchronous).
template <class T>
Status upload(DeviceBuffer* buf, const std::vector<T>& v) {
  VDIT_TRY(reallocate(buf, v.size() * sizeof(T)));
  if (!v.empty()) VDIT_TRY(buf->copy_from_host(v.data(), v.size() * sizeof(T)));
  return Status::ok();
}

}  // namespace vdit
