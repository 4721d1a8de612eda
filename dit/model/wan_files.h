// Finds the DiT weight files behind a `--weights` path: a single file (.safetensors, .pth), a sharded
// index (.safetensors.index.json), or a model directory — the official release layout
// (diffusion_pytorch_model*.safetensors[.index.json] + config.json at the top), the diffusers layout
// (the same inside transformer/), or our built-in layout (dit.safetensors). Opens them as one TensorFile.
// Does not read the config or check tensor names (wan_config.h, wan_names.h do).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/tensor_file.h"

namespace vdit::model {

struct WanDitFiles {
  std::vector<std::string> files;          // one file or index; several shards when there is no index
  std::optional<std::string> config_json;  // config.json beside the weights, when present
  std::string layout;                      // "file", "official directory", "diffusers directory", "built-in directory"
  std::string display_name() const;        // the path used in messages
};

// Resolves `path` (file or directory) as described above. not_found with the candidates it looked for.
Result<WanDitFiles> locate_wan_dit_files(const std::string& path);

// Opens the files as one TensorFile (shards without an index are merged; a name in two shards is an error).
Result<std::unique_ptr<TensorFile>> open_wan_dit_files(const WanDitFiles& files);

}  // namespace vdit::model
