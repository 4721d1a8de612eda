// safetensors writer (header JSON padded to 8 bytes, tensors in the given order), atomic via rename.
#include "io/safetensors_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

namespace vdit {

Status save_safetensors(const std::string& path, const NamedTensors& tensors,
                        const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (!t.defined()) return invalid_argument("tensor \"" + name + "\" is empty");
    if (header.contains(name)) return invalid_argument("tensor \"" + name + "\" given twice");
    nlohmann::ordered_json e;
    e["dtype"] = dtype_safetensors_name(t.dtype());
    e["shape"] = t.shape();
    e["data_offsets"] = {offset, offset + t.nbytes()};
    header[name] = e;
    offset += t.nbytes();
  }
  std::string hs = header.dump();
  while (hs.size() % 8) hs.push_back(' ');
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return io_error(path + ": cannot write (" + std::strerror(errno) + "); check that the folder exists and is writable");
  uint64_t n = hs.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, f) == 8 && std::fwrite(hs.data(), 1, hs.size(), f) == hs.size();
  for (const auto& [name, t] : tensors) {
    if (!ok) break;
    ok = std::fwrite(t.raw(), 1, t.nbytes(), f) == t.nbytes();
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    return io_error(path + ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    return io_error(path + ": cannot rename the finished file into place (" + std::strerror(e) + ")");
  }
  return Status::ok();
}

}  // namespace vdit
