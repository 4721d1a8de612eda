// fill_bench_data: the GPU side of block_sparse_bench_data.h (grid-stride fill, RNE conversion).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <type_traits>

#include "attention/cuda/block_sparse_bench_data.h"
#include "dit/core/check_cuda.h"

namespace vdit::attn {
namespace {

template <class T>
__global__ void fill_kernel(T* dst, int64_t n, uint64_t seed, float amplitude) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float x = bench_uniform(seed, static_cast<uint64_t>(i), amplitude);
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      dst[i] = __float2bfloat16_rn(x);
    } else {
      dst[i] = __float2half_rn(x);
    }
  }
}

}  // namespace

Status fill_bench_data(void* dst, DeviceDType dtype, int64_t n, uint64_t seed, float amplitude, void* stream) {
  if (n <= 0) return Status::ok();
  if (!dst) return invalid_argument("fill_bench_data: null destination");
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((n + threads - 1) / threads, 132 * 16));
  auto s = static_cast<cudaStream_t>(stream);
  if (dtype == DeviceDType::bf16) {
    fill_kernel<<<blocks, threads, 0, s>>>(static_cast<__nv_bfloat16*>(dst), n, seed, amplitude);
  } else {
    fill_kernel<<<blocks, threads, 0, s>>>(static_cast<__half*>(dst), n, seed, amplitude);
  }
  VDIT_CHECK_LAUNCH();
  return Status::ok();
}

}  // namespace vdit::attn
