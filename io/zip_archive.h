// Read-only zip archive index over bytes in memory (a mapped file): the end-of-central-directory
// record (zip64 when present), the central directory, and each entry's data range, all bounds-checked.
// It hands out pointers to stored (uncompressed) entries, which is what torch.save writes; it does not
// inflate compressed entries, write archives, or handle multi-disk (split) archives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dit/core/status.h"

namespace vdit {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;           // 0 = stored, 8 = deflate, ...
  uint16_t flags = 0;            // general-purpose bit flags (bit 0: encrypted)
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;             // uncompressed size
  uint64_t local_header_offset = 0;
  uint64_t data_offset = 0;      // where the entry's bytes start in the archive
};

class ZipArchive {
 public:
  // Indexes the archive in `data[0, size)`; `name` (the file path) prefixes every error message.
  // The bytes must outlive the archive and every pointer it hands out.
  static Result<ZipArchive> parse(const uint8_t* data, size_t size, const std::string& name);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  // nullptr if absent.
  const ZipEntry* find(const std::string& entry_name) const;
  // The bytes of a stored (uncompressed, unencrypted) entry; an error names the entry otherwise.
  Result<const uint8_t*> stored_data(const ZipEntry& e) const;
  // Like stored_data, and also checks the entry's CRC-32 (reads every byte: use for small entries).
  Result<const uint8_t*> stored_data_checked(const ZipEntry& e) const;
  const std::string& name() const { return name_; }
  bool is_zip64() const { return zip64_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string name_;
  bool zip64_ = false;
  std::vector<ZipEntry> entries_;
  std::map<std::string, size_t> index_;
};

// CRC-32 (IEEE 802.3, as zip uses), continuing from `crc` (0 to start).
uint32_t zip_crc32(uint32_t crc, const uint8_t* data, size_t n);

}  // namespace vdit
