// The rules for unpickling a torch.save'd state dict (the `data.pkl` of a .pth zip): the allow-list of
// globals (collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter[_with_state],
// torch.*Storage types), persistent ids naming storages, and the flattening of the result into named
// tensor views. It only describes views (storage key, offset, shape, strides); it does not touch the
// zip or the storage bytes (io/pth_reader.cpp does).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dit/core/tensor.h"

namespace vdit::pickle {

struct TorchStorage {
  std::string key;      // the zip entry is "<archive>/data/<key>"
  DType dtype = DType::f32;
  uint64_t numel = 0;   // elements of `dtype`, as the pickle states
};

struct TorchTensor {
  std::string name;     // state-dict key ("encoder.conv1.weight"); nested dicts joined with '.'
  uint32_t storage = 0; // index into TorchStateDict::storages
  uint64_t offset = 0;  // storage offset, in elements
  Shape shape;
  Shape strides;        // in elements
};

struct TorchStateDict {
  std::vector<TorchStorage> storages;
  std::vector<TorchTensor> tensors;              // in the dict's order
  std::map<std::string, std::string> metadata;   // plain values stored beside the tensors ("epoch" = "12")
};

// Unpickles `data[0, size)` under the state-dict rules and flattens the result. Every view is checked
// to lie inside its storage's stated size. `where` starts error messages ("m.pth: archive/data.pkl").
Result<TorchStateDict> load_torch_state_dict(const uint8_t* data, size_t size, const std::string& where);

// Whether the view is row-major contiguous (size-1 dimensions may have any stride).
bool is_contiguous_view(const Shape& shape, const Shape& strides);

}  // namespace vdit::pickle
