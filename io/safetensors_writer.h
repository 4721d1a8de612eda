// Writes safetensors files atomically: data goes to "<path>.tmp-<pid>", then is renamed over `path`,
// so a crash or kill never leaves a partial file under the final name.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dit/core/tensor.h"

namespace vdit {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

Status save_safetensors(const std::string& path, const NamedTensors& tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace vdit
