// libFuzzer target: the restricted unpickler and state-dict rules on arbitrary bytes in memory (an
// exact-size heap copy, so ASan sees any overread). Seeds: the data.pkl of the .pth fixtures.
#include <vector>

#include "io/pickle_torch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> copy(data, data + size);
  auto sd = vdit::pickle::load_torch_state_dict(copy.data(), copy.size(), "input.pkl");
  if (sd) {
    for (const auto& t : sd->tensors) {
      if (t.storage >= sd->storages.size()) __builtin_trap();  // an index the reader would follow
      (void)vdit::pickle::is_contiguous_view(t.shape, t.strides);
    }
  }
  return 0;
}
