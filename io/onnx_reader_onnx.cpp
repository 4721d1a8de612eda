// ONNX reader: placeholder until the protobuf-based reader lands (issue: Foundation, item 4).
#include "io/tensor_file.h"

namespace vdit {
Result<std::unique_ptr<TensorFile>> open_onnx(const std::string& path) {
  return unsupported(path + ": reading ONNX initializers is not implemented yet");
}
}  // namespace vdit
