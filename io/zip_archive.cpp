// Zip index: finds the end-of-central-directory record (and the zip64 records when the archive needs
// them), walks the central directory and resolves each entry's data offset through its local header.
// Every read is bounds-checked against the archive size; nothing is decompressed.
#include "io/zip_archive.h"

#include <algorithm>
#include <array>

namespace vdit {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50;
constexpr uint32_t kEnd64LocatorSig = 0x07064b50;
constexpr size_t kEndSize = 22;
constexpr size_t kEnd64LocatorSize = 20;
constexpr size_t kEnd64MinSize = 56;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kLocalHeaderSize = 30;

// Little-endian reads; callers check the range first.
uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t rd32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t rd64(const uint8_t* p) { return rd32(p) | (static_cast<uint64_t>(rd32(p + 4)) << 32); }

// True when [offset, offset + len) lies inside [0, size).
bool in_range(uint64_t offset, uint64_t len, uint64_t size) { return offset <= size && len <= size - offset; }

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

// Reads the zip64 extended-information extra field (id 0x0001) of a central header: the fields that
// are 0xFFFFFFFF (0xFFFF for the disk) in the fixed header follow, in this order, as 64-bit values.
Status read_zip64_extra(ZipEntry* e, const uint8_t* extra, size_t extra_len, bool need_size, bool need_csize,
                        bool need_offset, const std::string& where) {
  size_t pos = 0;
  while (pos + 4 <= extra_len) {
    uint16_t id = rd16(extra + pos);
    uint16_t len = rd16(extra + pos + 2);
    if (pos + 4 + len > extra_len) break;
    if (id == 0x0001) {
      const uint8_t* f = extra + pos + 4;
      size_t avail = len, at = 0;
      auto take = [&](uint64_t* dst) {
        if (at + 8 > avail) return false;
        *dst = rd64(f + at);
        at += 8;
        return true;
      };
      if ((need_size && !take(&e->size)) || (need_csize && !take(&e->compressed_size)) ||
          (need_offset && !take(&e->local_header_offset))) {
        return format_error(where + ": zip64 extra field of entry \"" + e->name + "\" is too short");
      }
      return Status::ok();
    }
    pos += 4 + static_cast<size_t>(len);
  }
  return format_error(where + ": entry \"" + e->name + "\" has 32-bit size/offset markers (0xFFFFFFFF) but no zip64 extra field");
}

}  // namespace

uint32_t zip_crc32(uint32_t crc, const uint8_t* data, size_t n) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

Result<ZipArchive> ZipArchive::parse(const uint8_t* data, size_t size, const std::string& name) {
  ZipArchive z;
  z.data_ = data;
  z.size_ = size;
  z.name_ = name;
  if (size < kEndSize) {
    return format_error(strfmt("%s: truncated or not a zip archive (%zu bytes, no end-of-central-directory record)", name.c_str(), size));
  }
  // The end record sits in the last 22 + 65535 (comment) bytes; scan backwards for its signature.
  size_t end_pos = SIZE_MAX;
  size_t lowest = size > kEndSize + 0xffff ? size - kEndSize - 0xffff : 0;
  for (size_t p = size - kEndSize + 1; p-- > lowest;) {
    if (rd32(data + p) == kEndSig && p + kEndSize + rd16(data + p + 20) <= size) {
      end_pos = p;
      break;
    }
  }
  if (end_pos == SIZE_MAX) {
    return format_error(name + ": no zip end-of-central-directory record: the file is truncated or not a zip archive");
  }
  const uint8_t* end = data + end_pos;
  uint64_t disk = rd16(end + 4), cd_disk = rd16(end + 6);
  uint64_t count = rd16(end + 10);
  uint64_t cd_size = rd32(end + 12);
  uint64_t cd_offset = rd32(end + 16);
  // zip64: a locator right before the end record points at the zip64 end record, which holds the
  // 64-bit counts and offsets (needed past 65535 entries or 4 GiB, e.g. an 11 GB checkpoint).
  if (end_pos >= kEnd64LocatorSize && rd32(data + end_pos - kEnd64LocatorSize) == kEnd64LocatorSig) {
    const uint8_t* loc = data + end_pos - kEnd64LocatorSize;
    uint64_t end64_pos = rd64(loc + 8);
    if (!in_range(end64_pos, kEnd64MinSize, end_pos - kEnd64LocatorSize) || rd32(data + end64_pos) != kEnd64Sig) {
      return format_error(strfmt("%s: zip64 end-of-central-directory locator points to offset %llu, where there is no zip64 record",
                                 name.c_str(), static_cast<unsigned long long>(end64_pos)));
    }
    const uint8_t* e64 = data + end64_pos;
    disk = rd32(e64 + 16);
    cd_disk = rd32(e64 + 20);
    count = rd64(e64 + 32);
    cd_size = rd64(e64 + 40);
    cd_offset = rd64(e64 + 48);
    z.zip64_ = true;
  } else if (count == 0xffff || cd_size == 0xffffffffu || cd_offset == 0xffffffffu) {
    return format_error(name + ": the end record says zip64 but there is no zip64 locator: truncated or corrupt archive");
  }
  if (disk != 0 || cd_disk != 0) return unsupported(name + ": multi-disk (split) zip archives are not supported");
  if (!in_range(cd_offset, cd_size, size)) {
    return format_error(strfmt("%s: zip central directory [%llu, +%llu) lies outside the file (%zu bytes): truncated archive",
                               name.c_str(), static_cast<unsigned long long>(cd_offset),
                               static_cast<unsigned long long>(cd_size), size));
  }
  if (count > cd_size / kCentralHeaderSize) {
    return format_error(strfmt("%s: zip central directory claims %llu entries but has room for at most %llu",
                               name.c_str(), static_cast<unsigned long long>(count),
                               static_cast<unsigned long long>(cd_size / kCentralHeaderSize)));
  }
  z.entries_.reserve(static_cast<size_t>(count));
  uint64_t pos = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (!in_range(pos, kCentralHeaderSize, cd_end) || rd32(data + pos) != kCentralHeaderSig) {
      return format_error(strfmt("%s: zip central directory entry %llu at offset %llu is missing or corrupt",
                                 name.c_str(), static_cast<unsigned long long>(i), static_cast<unsigned long long>(pos)));
    }
    const uint8_t* h = data + pos;
    ZipEntry e;
    e.flags = rd16(h + 8);
    e.method = rd16(h + 10);
    e.crc32 = rd32(h + 16);
    e.compressed_size = rd32(h + 20);
    e.size = rd32(h + 24);
    size_t name_len = rd16(h + 28), extra_len = rd16(h + 30), comment_len = rd16(h + 32);
    e.local_header_offset = rd32(h + 42);
    if (!in_range(pos + kCentralHeaderSize, name_len + extra_len + comment_len, cd_end)) {
      return format_error(strfmt("%s: zip central directory entry %llu runs past the directory's end",
                                 name.c_str(), static_cast<unsigned long long>(i)));
    }
    e.name.assign(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_len);
    bool need_size = e.size == 0xffffffffu, need_csize = e.compressed_size == 0xffffffffu;
    bool need_offset = e.local_header_offset == 0xffffffffu;
    if (need_size || need_csize || need_offset) {
      VDIT_TRY(read_zip64_extra(&e, h + kCentralHeaderSize + name_len, extra_len, need_size, need_csize, need_offset, name));
    }
    // The data starts after the local header, whose name and extra lengths may differ from the
    // central copy (torch pads the local extra field to align tensor data to 64 bytes).
    uint64_t lh = e.local_header_offset;
    if (!in_range(lh, kLocalHeaderSize, size) || rd32(data + lh) != kLocalHeaderSig) {
      return format_error(strfmt("%s: zip entry \"%s\" points to offset %llu, where there is no local header",
                                 name.c_str(), e.name.c_str(), static_cast<unsigned long long>(lh)));
    }
    uint64_t data_off = lh + kLocalHeaderSize + rd16(data + lh + 26) + rd16(data + lh + 28);
    if (!in_range(data_off, e.compressed_size, size)) {
      return format_error(strfmt("%s: zip entry \"%s\" (%llu bytes at offset %llu) runs past the end of the file (%zu bytes): truncated archive",
                                 name.c_str(), e.name.c_str(), static_cast<unsigned long long>(e.compressed_size),
                                 static_cast<unsigned long long>(data_off), size));
    }
    e.data_offset = data_off;
    if (z.index_.count(e.name)) return format_error(name + ": zip entry \"" + e.name + "\" appears twice");
    z.index_[e.name] = z.entries_.size();
    z.entries_.push_back(std::move(e));
    pos += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
  return z;
}

const ZipEntry* ZipArchive::find(const std::string& entry_name) const {
  auto it = index_.find(entry_name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

Result<const uint8_t*> ZipArchive::stored_data(const ZipEntry& e) const {
  if (e.flags & 1u) return unsupported(name_ + ": zip entry \"" + e.name + "\" is encrypted");
  if (e.method != 0) {
    return unsupported(strfmt("%s: zip entry \"%s\" is compressed (method %u); only stored entries can be read, as torch.save "
                              "writes them: re-save the file with torch.save",
                              name_.c_str(), e.name.c_str(), e.method));
  }
  if (e.compressed_size != e.size) {
    return format_error(strfmt("%s: stored zip entry \"%s\" has compressed size %llu but size %llu", name_.c_str(), e.name.c_str(),
                               static_cast<unsigned long long>(e.compressed_size), static_cast<unsigned long long>(e.size)));
  }
  return data_ + e.data_offset;
}

Result<const uint8_t*> ZipArchive::stored_data_checked(const ZipEntry& e) const {
  VDIT_ASSIGN(const uint8_t* p, stored_data(e));
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION  // fuzzers mutate entry bytes; a CRC would stop them at once
  uint32_t crc = zip_crc32(0, p, static_cast<size_t>(e.size));
  if (crc != e.crc32) {
    return format_error(strfmt("%s: zip entry \"%s\" fails its CRC-32 check (stored %08x, computed %08x): the file is corrupt",
                               name_.c_str(), e.name.c_str(), e.crc32, crc));
  }
#endif
  return p;
}

}  // namespace vdit
