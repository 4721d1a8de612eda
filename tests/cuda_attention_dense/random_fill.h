// Launcher of the device fill in random_fill.cu (for the timing test's large inputs; 0 = success).
#pragma once
#include <cstdint>
// dst[i] = uniform(-1, 1) from a hash of (seed, i), stored as bf16 (bf16 = true) or f16; asynchronous.
int launch_fill_uniform_16(void* dst, int64_t n, uint64_t seed, bool bf16);
