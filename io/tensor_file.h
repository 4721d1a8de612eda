// One interface over every weight file format: name -> (dtype, shape, bytes), plus string metadata.
// Readers: safetensors (single and sharded), PyTorch .pth/.pt zip checkpoints (restricted unpickler),
// ONNX initializers. All are bounds-checked; data is memory-mapped where the format allows, so opening
// a multi-gigabyte checkpoint reads only its header.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dit/core/tensor.h"

namespace vdit {

struct TensorEntry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  const uint8_t* data = nullptr;  // contiguous, row-major, `nbytes` long, valid while the file is open
  size_t nbytes = 0;
  std::string source;             // file the bytes come from (shard, zip entry, external data file)
};

class TensorFile {
 public:
  virtual ~TensorFile() = default;
  // Every tensor, in the file's order.
  const std::vector<TensorEntry>& entries() const { return entries_; }
  // nullptr if absent.
  const TensorEntry* find(const std::string& name) const;
  // String metadata: safetensors `__metadata__`, ONNX metadata_props, ...
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }
  const std::string& format() const { return format_; }  // "safetensors", "safetensors-sharded", "pth", "onnx"

  // A tensor sharing the file's memory (no copy); the file stays mapped while the tensor lives.
  Result<Tensor> tensor(const std::string& name) const;
  // A converted f32 copy.
  Result<Tensor> tensor_f32(const std::string& name) const;

 protected:
  std::vector<TensorEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  std::string path_;
  std::string format_;
  std::vector<std::shared_ptr<const void>> keep_alive_;  // mappings and owned buffers
  void add_entry(TensorEntry e);
};

// Opens any supported file by its extension and magic bytes: *.safetensors, *.safetensors.index.json,
// *.pth / *.pt / *.bin (zip), *.onnx. A directory is not accepted here (see the model loaders).
Result<std::unique_ptr<TensorFile>> open_tensor_file(const std::string& path);

Result<std::unique_ptr<TensorFile>> open_safetensors(const std::string& path);
Result<std::unique_ptr<TensorFile>> open_safetensors_index(const std::string& index_json_path);
Result<std::unique_ptr<TensorFile>> open_pth(const std::string& path);
Result<std::unique_ptr<TensorFile>> open_onnx(const std::string& path);

}  // namespace vdit
