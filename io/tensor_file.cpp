// TensorFile common parts and the format dispatcher.
#include "io/tensor_file.h"

#include <cstdio>
#include <cstring>

namespace vdit {

void TensorFile::add_entry(TensorEntry e) {
  index_[e.name] = entries_.size();
  entries_.push_back(std::move(e));
}

const TensorEntry* TensorFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

Result<Tensor> TensorFile::tensor(const std::string& name) const {
  const TensorEntry* e = find(name);
  if (!e) return not_found(path_ + ": no tensor named \"" + name + "\"");
  // The tensor keeps every mapping of the file alive (a sharded file has several).
  auto all = std::make_shared<std::vector<std::shared_ptr<const void>>>(keep_alive_);
  auto buf = HostBuffer::borrow(const_cast<uint8_t*>(e->data), e->nbytes, all);
  return Tensor::from_buffer(buf, 0, e->dtype, e->shape);
}

Result<Tensor> TensorFile::tensor_f32(const std::string& name) const {
  VDIT_ASSIGN(Tensor t, tensor(name));
  if (t.dtype() == DType::f32) return t.clone();
  return t.to(DType::f32);
}

namespace {
bool ends_with(const std::string& s, const char* suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}
}  // namespace

Result<std::unique_ptr<TensorFile>> open_tensor_file(const std::string& path) {
  if (ends_with(path, ".index.json")) return open_safetensors_index(path);
  if (ends_with(path, ".safetensors")) return open_safetensors(path);
  if (ends_with(path, ".onnx")) return open_onnx(path);
  if (ends_with(path, ".pth") || ends_with(path, ".pt") || ends_with(path, ".bin") || ends_with(path, ".ckpt")) {
    return open_pth(path);
  }
  // Unknown extension: sniff the first bytes (zip "PK\3\4" is a torch checkpoint).
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return not_found(path + ": cannot open");
  unsigned char magic[4] = {0, 0, 0, 0};
  size_t got = std::fread(magic, 1, 4, f);
  std::fclose(f);
  if (got == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4) return open_pth(path);
  auto st = open_safetensors(path);
  if (st) return st;
  return format_error(path + ": unknown weight format (expected .safetensors, .safetensors.index.json, .pth/.pt or .onnx)");
}

}  // namespace vdit
