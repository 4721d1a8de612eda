// Element types of stored and computed tensors, and exact conversions between them. bf16 and f16 are
// converted with round-to-nearest-even (NaN stays NaN, overflow goes to infinity), as PyTorch does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "dit/core/status.h"

namespace vdit {

enum class DType : uint8_t { f32, f16, bf16, f64, i64, i32, i16, i8, u8, boolean };

size_t dtype_size(DType t);
const char* dtype_name(DType t);              // "f32", "bf16", ...
const char* dtype_safetensors_name(DType t);  // "F32", "BF16", ...
Result<DType> dtype_from_safetensors(const std::string& name);
bool dtype_is_float(DType t);

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float f32_from_bits(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline float bf16_to_f32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Converts `n` elements of type `src_type` to f32. Integer and bool types convert by value.
void convert_to_f32(float* dst, const void* src, DType src_type, size_t n);
// Converts `n` f32 values to `dst_type` (float types with round-to-nearest-even; integers truncate).
void convert_from_f32(void* dst, DType dst_type, const float* src, size_t n);

}  // namespace vdit
