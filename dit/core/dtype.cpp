// dtype names, sizes and conversions (f16 by bit manipulation with round-to-nearest-even).
#include "dit/core/dtype.h"

#include <cmath>

namespace vdit {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: case DType::i32: return 4;
    case DType::f16: case DType::bf16: case DType::i16: return 2;
    case DType::f64: case DType::i64: return 8;
    case DType::i8: case DType::u8: case DType::boolean: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::f64: return "f64";
    case DType::i64: return "i64";
    case DType::i32: return "i32";
    case DType::i16: return "i16";
    case DType::i8: return "i8";
    case DType::u8: return "u8";
    case DType::boolean: return "bool";
  }
  return "?";
}

const char* dtype_safetensors_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
    case DType::i32: return "I32";
    case DType::i16: return "I16";
    case DType::i8: return "I8";
    case DType::u8: return "U8";
    case DType::boolean: return "BOOL";
  }
  return "?";
}

Result<DType> dtype_from_safetensors(const std::string& n) {
  if (n == "F32") return DType::f32;
  if (n == "F16") return DType::f16;
  if (n == "BF16") return DType::bf16;
  if (n == "F64") return DType::f64;
  if (n == "I64") return DType::i64;
  if (n == "I32") return DType::i32;
  if (n == "I16") return DType::i16;
  if (n == "I8") return DType::i8;
  if (n == "U8") return DType::u8;
  if (n == "BOOL") return DType::boolean;
  return Status(StatusCode::format_error, "unknown dtype \"" + n + "\" (vdit reads F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL)");
}

bool dtype_is_float(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16 || t == DType::f64;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0) {
    if (man == 0) return f32_from_bits(sign);
    // subnormal: value = man * 2^-24
    float v = std::ldexp(static_cast<float>(man), -24);
    return sign ? -v : v;
  }
  if (exp == 31) return f32_from_bits(sign | 0x7f800000u | (man << 13));
  return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;  // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u; // overflow (>= 65520 rounds to inf) or inf
  if (abs < 0x38800000u) {                        // below the smallest normal f16 (2^-14)
    // subnormal or zero: round(abs_value / 2^-24) with ties to even, done in integer arithmetic
    uint32_t e = abs >> 23;
    if (e < 102) return sign;                     // < 2^-25: rounds to zero
    uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;                     // value = m * 2^(e-150); want m * 2^(e-150+24)
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);  // round mantissa to 10 bits, ties to even
  return static_cast<uint16_t>(sign | ((r - (112u << 23)) >> 13));
}

namespace {
template <class T>
void ints_to_f32(float* dst, const void* src, size_t n) {
  const T* s = static_cast<const T*>(src);
  for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
}
template <class T>
void f32_to_ints(void* dst, const float* src, size_t n) {
  T* d = static_cast<T*>(dst);
  for (size_t i = 0; i < n; ++i) d[i] = static_cast<T>(src[i]);
}
}  // namespace

void convert_to_f32(float* dst, const void* src, DType t, size_t n) {
  switch (t) {
    case DType::f32: std::memcpy(dst, src, n * 4); return;
    case DType::f16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::bf16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::f64: ints_to_f32<double>(dst, src, n); return;
    case DType::i64: ints_to_f32<int64_t>(dst, src, n); return;
    case DType::i32: ints_to_f32<int32_t>(dst, src, n); return;
    case DType::i16: ints_to_f32<int16_t>(dst, src, n); return;
    case DType::i8: ints_to_f32<int8_t>(dst, src, n); return;
    case DType::u8: case DType::boolean: ints_to_f32<uint8_t>(dst, src, n); return;
  }
}

void convert_from_f32(void* dst, DType t, const float* src, size_t n) {
  switch (t) {
    case DType::f32: std::memcpy(dst, src, n * 4); return;
    case DType::f16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
      return;
    }
    case DType::bf16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::f64: f32_to_ints<double>(dst, src, n); return;
    case DType::i64: f32_to_ints<int64_t>(dst, src, n); return;
    case DType::i32: f32_to_ints<int32_t>(dst, src, n); return;
    case DType::i16: f32_to_ints<int16_t>(dst, src, n); return;
    case DType::i8: f32_to_ints<int8_t>(dst, src, n); return;
    case DType::u8: f32_to_ints<uint8_t>(dst, src, n); return;
    case DType::boolean: {
      uint8_t* d = static_cast<uint8_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = src[i] != 0.0f;
      return;
    }
  }
}

}  // namespace vdit
