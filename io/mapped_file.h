// Read-only memory-mapped files. Weight readers hand out pointers into the mapping; the mapping lives
// as long as any tensor that borrows from it (shared ownership).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "dit/core/status.h"

namespace vdit {

class MappedFile {
 public:
  static Result<std::shared_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace vdit
