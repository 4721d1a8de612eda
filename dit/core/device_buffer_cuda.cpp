// DeviceBuffer on the CUDA runtime.
#include <cuda_runtime.h>

#include <atomic>
#include <utility>

#include "dit/core/check_cuda.h"
#include "dit/core/device_buffer.h"

namespace vdit {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

namespace {
std::atomic<size_t> g_held{0}, g_peak{0};

void note_allocated(size_t bytes) {
  const size_t now = g_held.fetch_add(bytes) + bytes;
  size_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}
}  // namespace

DeviceMemoryUse device_memory_use() {
  DeviceMemoryUse u;
  u.held = g_held.load();
  u.peak = g_peak.load();
  if (cuda_device_count() > 0) {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
      u.device_used = total_b - free_b;
      u.device_total = total_b;
    } else {
      cudaGetLastError();
    }
  }
  return u;
}

void reset_device_memory_peak() { g_peak.store(g_held.load()); }

DeviceBuffer::~DeviceBuffer() { release(); }

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void DeviceBuffer::release() {
  if (data_) {
    cudaFree(data_);
    g_held.fetch_sub(size_);
  }
  data_ = nullptr;
  size_ = 0;
}

Result<DeviceBuffer> DeviceBuffer::allocate(size_t bytes) {
  DeviceBuffer b;
  if (bytes == 0) return b;
  cudaError_t e = cudaMalloc(&b.data_, bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return out_of_memory(strfmt("GPU out of memory: %.1f MiB requested, %.1f MiB free of %.1f MiB; use a smaller "
                                "size or free the GPU (other processes on it count too)",
                                bytes / 1048576.0, free_b / 1048576.0, total_b / 1048576.0));
  }
  VDIT_CHECK(e);
  b.size_ = bytes;
  note_allocated(bytes);
  return b;
}

Status DeviceBuffer::copy_from_host(const void* src, size_t bytes) {
  if (bytes > size_) return invalid_argument(strfmt("copy of %zu bytes into a %zu-byte device buffer", bytes, size_));
  VDIT_CHECK(cudaMemcpy(data_, src, bytes, cudaMemcpyHostToDevice));
  return Status::ok();
}

Status DeviceBuffer::copy_to_host(void* dst, size_t bytes) const {
  if (bytes > size_) return invalid_argument(strfmt("copy of %zu bytes from a %zu-byte device buffer", bytes, size_));
  VDIT_CHECK(cudaMemcpy(dst, data_, bytes, cudaMemcpyDeviceToHost));
  return Status::ok();
}

}  // namespace vdit
