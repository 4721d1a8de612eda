// PyTorch .pth reader: placeholder until the restricted unpickler lands (issue: Foundation, item 4).
#include "io/tensor_file.h"

namespace vdit {
Result<std::unique_ptr<TensorFile>> open_pth(const std::string& path) {
  return unsupported(path + ": reading .pth checkpoints is not implemented yet");
}
}  // namespace vdit
