// Backend-independent part of t5_encoder_cuda.h: the precision names.
#include "dit/text/t5_encoder_cuda.h"

namespace vdit::text {

const char* t5_precision_name(T5Precision p) { return p == T5Precision::bf16 ? "bf16" : "f32"; }

Result<T5Precision> parse_t5_precision(const std::string& name) {
  if (name == "bf16") return T5Precision::bf16;
  if (name == "f32" || name == "fp32") return T5Precision::f32;
  return invalid_argument("T5 precision \"" + name + "\": use bf16 or f32");
}

}  // namespace vdit::text
