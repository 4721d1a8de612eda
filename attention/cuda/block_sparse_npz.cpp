// save_block_lists_npz: NPY v1.0 arrays in a zip archive of stored entries (local headers, central
// directory, end record; no zip64, so the file must stay under 4 GiB).
#include "attention/cuda/block_sparse_npz.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "io/zip_archive.h"

namespace vdit::attn {
namespace {

void put16(std::vector<uint8_t>& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
void put32(std::vector<uint8_t>& b, uint32_t v) {
  put16(b, v & 0xffffu);
  put16(b, v >> 16);
}

// One .npy file: header dict padded so the data starts at a multiple of 64 bytes.
std::vector<uint8_t> npy(const char* descr, const void* data, size_t count, size_t elem, bool scalar) {
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" +
                     (scalar ? std::string() : std::to_string(count) + ",") + "), }";
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  put16(b, static_cast<uint32_t>(dict.size()));
  b.insert(b.end(), dict.begin(), dict.end());
  const auto* p = static_cast<const uint8_t*>(data);
  b.insert(b.end(), p, p + count * elem);
  return b;
}

}  // namespace

Status save_block_lists_npz(const std::string& path, const BlockLayout& layout) {
  const int64_t block = layout.block, seq_len = layout.seq_len, heads = layout.num_heads;
  struct Entry {
    std::string name;
    std::vector<uint8_t> bytes;
  };
  std::vector<Entry> entries = {
      {"full_ptr.npy", npy("<i8", layout.full_ptr.data(), layout.full_ptr.size(), 8, false)},
      {"full_idx.npy", npy("<i4", layout.full_idx.data(), layout.full_idx.size(), 4, false)},
      {"partial_ptr.npy", npy("<i8", layout.part_ptr.data(), layout.part_ptr.size(), 8, false)},
      {"partial_idx.npy", npy("<i4", layout.part_idx.data(), layout.part_idx.size(), 4, false)},
      {"block.npy", npy("<i8", &block, 1, 8, true)},
      {"seq_len.npy", npy("<i8", &seq_len, 1, 8, true)},
      {"num_heads.npy", npy("<i8", &heads, 1, 8, true)},
  };
  std::vector<uint8_t> file, central;
  for (const Entry& e : entries) {
    const uint32_t crc = zip_crc32(0, e.bytes.data(), e.bytes.size());
    const uint32_t offset = static_cast<uint32_t>(file.size());
    if (file.size() + e.bytes.size() + 1024 >= (uint64_t{1} << 32)) {
      return unsupported(path + ": block lists exceed the 4 GiB a plain zip holds");
    }
    const auto size = static_cast<uint32_t>(e.bytes.size()), name_len = static_cast<uint32_t>(e.name.size());
    put32(file, 0x04034b50u);  // local file header
    put16(file, 20);           // version needed
    put16(file, 0);            // flags
    put16(file, 0);            // stored
    put16(file, 0);            // time
    put16(file, 0x21);         // date (1980-01-01)
    put32(file, crc);
    put32(file, size);
    put32(file, size);
    put16(file, name_len);
    put16(file, 0);
    file.insert(file.end(), e.name.begin(), e.name.end());
    file.insert(file.end(), e.bytes.begin(), e.bytes.end());
    put32(central, 0x02014b50u);  // central directory header
    put16(central, 20);
    put16(central, 20);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0x21);
    put32(central, crc);
    put32(central, size);
    put32(central, size);
    put16(central, name_len);
    put16(central, 0);  // extra
    put16(central, 0);  // comment
    put16(central, 0);  // disk
    put16(central, 0);  // internal attributes
    put32(central, 0);  // external attributes
    put32(central, offset);
    central.insert(central.end(), e.name.begin(), e.name.end());
  }
  const auto cd_offset = static_cast<uint32_t>(file.size()), cd_size = static_cast<uint32_t>(central.size());
  file.insert(file.end(), central.begin(), central.end());
  put32(file, 0x06054b50u);  // end of central directory
  put16(file, 0);
  put16(file, 0);
  put16(file, static_cast<uint32_t>(entries.size()));
  put16(file, static_cast<uint32_t>(entries.size()));
  put32(file, cd_size);
  put32(file, cd_offset);
  put16(file, 0);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return io_error(path + ": cannot open for writing: " + std::strerror(errno));
  const bool ok = std::fwrite(file.data(), 1, file.size(), f) == file.size();
  if (std::fclose(f) != 0 || !ok) return io_error(path + ": write failed: " + std::strerror(errno));
  return Status::ok();
}

}  // namespace vdit::attn
