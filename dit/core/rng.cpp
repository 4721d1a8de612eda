// Host fill of the counter-based Gaussian noise (dit/core/rng.h), threaded over 4-element blocks.
#include "dit/core/rng.h"

#include "dit/core/parallel.h"

namespace vdit {

void fill_gaussian(float* dst, int64_t n, uint64_t seed, uint64_t first_index) {
  if (n <= 0 || dst == nullptr) return;
  const uint64_t first_block = first_index >> 2;
  const uint64_t last_block = (first_index + static_cast<uint64_t>(n) - 1) >> 2;
  parallel_for_static(static_cast<int64_t>(last_block - first_block + 1), [&](int64_t j) {
    const uint64_t block = first_block + static_cast<uint64_t>(j);
    float z[4];
    gaussian_block(seed, block, z);
    for (uint64_t k = 0; k < 4; ++k) {
      const uint64_t index = block * 4 + k;  // global element index
      if (index >= first_index && index - first_index < static_cast<uint64_t>(n)) dst[index - first_index] = z[k];
    }
  });
}

Result<Tensor> gaussian_noise(uint64_t seed, Shape shape) {
  auto t = Tensor::create(DType::f32, shape);
  if (!t) return t.status().with_context("gaussian noise of shape " + shape_str(shape));
  fill_gaussian(t->f32(), t->numel(), seed, 0);
  return t;
}

}  // namespace vdit
