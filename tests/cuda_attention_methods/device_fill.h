// Launcher of the device-side random fill in device_fill.cu (large timing inputs without a host copy).
#pragma once
#include <cstdint>
// dst[i] = sigma · uniform(-√3, √3) (unit variance · sigma) from a hash of (seed, i), as bf16 or f16;
// asynchronous on the default stream. Returns 0 on success.
int planners_fill_16(void* dst, int64_t n, uint64_t seed, float sigma, bool bf16);
