// A tiny device kernel for the DeviceBuffer test: y[i] = a·x[i] + i.
#include <cuda_runtime.h>

#include "tests/cuda_core/scale_kernel.h"

namespace {
__global__ void scale_add_index(float* y, const float* x, float a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + static_cast<float>(i);
}
}  // namespace

int launch_scale_add_index(float* y, const float* x, float a, int n) {
  scale_add_index<<<(n + 255) / 256, 256>>>(y, x, a, n);
  if (cudaGetLastError() != cudaSuccess) return 1;
  return cudaDeviceSynchronize() == cudaSuccess ? 0 : 1;
}
