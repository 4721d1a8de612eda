// ONNX reader when vdit is built without the ONNX protobuf definitions.
#include "io/tensor_file.h"

namespace vdit {
Result<std::unique_ptr<TensorFile>> open_onnx(const std::string& path) {
  return unsupported(path + ": this vdit was built without ONNX support; install libonnx-dev libprotobuf-dev and rebuild");
}
}  // namespace vdit
