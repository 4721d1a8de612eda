// DeviceBuffer on a GPU: allocation, round trip, a kernel reading and writing it, and clear errors.
#include <gtest/gtest.h>

#include <vector>

#include "dit/core/device_buffer.h"
#include "tests/cuda_core/scale_kernel.h"

using namespace vdit;

TEST(DeviceBuffer, RoundTripAndKernel) {
  ASSERT_GT(cuda_device_count(), 0);
  const int n = 100003;  // not a multiple of the block size
  std::vector<float> x(n), y(n, -1.f);
  for (int i = 0; i < n; ++i) x[i] = 0.25f * static_cast<float>(i % 97) - 3.f;
  auto dx = DeviceBuffer::allocate(n * sizeof(float));
  auto dy = DeviceBuffer::allocate(n * sizeof(float));
  ASSERT_TRUE(dx && dy) << dx.status().to_string();
  ASSERT_TRUE(dx->copy_from_host(x.data(), n * sizeof(float)).is_ok());
  ASSERT_EQ(launch_scale_add_index(dy->as<float>(), dx->as<float>(), 2.f, n), 0);
  ASSERT_TRUE(dy->copy_to_host(y.data(), n * sizeof(float)).is_ok());
  for (int i = 0; i < n; ++i) ASSERT_EQ(y[i], 2.f * x[i] + static_cast<float>(i)) << i;
}

TEST(DeviceBuffer, ErrorsAreStatuses) {
  auto b = DeviceBuffer::allocate(16);
  ASSERT_TRUE(b);
  float big[8] = {};
  EXPECT_EQ(b->copy_from_host(big, sizeof(big)).code(), StatusCode::invalid_argument);
  auto huge = DeviceBuffer::allocate(size_t{1} << 50);  // 1 PiB
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.status().code(), StatusCode::out_of_memory);
  EXPECT_NE(huge.status().message().find("smaller"), std::string::npos) << huge.status().message();
}
