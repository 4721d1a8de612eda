// GoogleTest entry point shared by every suite. GPU suites (compiled with VDIT_TEST_NEEDS_GPU) exit 77,
// which CTest reports as skipped, when no CUDA device is present.
#include <gtest/gtest.h>

#include <cstdio>

#ifdef VDIT_TEST_NEEDS_GPU
#include <cuda_runtime.h>
#endif

int main(int argc, char** argv) {
#ifdef VDIT_TEST_NEEDS_GPU
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    std::printf("no CUDA device: skipping GPU tests\n");
    return 77;
  }
#endif
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
