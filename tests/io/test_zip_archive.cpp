// Zip index on archives built here byte by byte: entries, comments, CRC, zip64 records, and each
// corruption the index must refuse with a message (never a read outside the buffer).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/zip_archive.h"

using namespace vdit;

namespace {

void put16(std::string* s, uint32_t v) { for (int i = 0; i < 2; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff)); }
void put32(std::string* s, uint32_t v) { for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff)); }
void put64(std::string* s, uint64_t v) { for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff)); }
void set32(std::string* s, size_t at, uint32_t v) { for (int i = 0; i < 4; ++i) (*s)[at + i] = static_cast<char>((v >> (8 * i)) & 0xff); }

struct Item {
  std::string name, data;
  uint16_t flags = 0;
};

// A stored archive; `zip64` writes 0xFFFFFFFF markers, zip64 extra fields and the zip64 end records.
// `central_at` receives each central header's offset.
std::string make_zip(const std::vector<Item>& items, bool zip64 = false, const std::string& comment = "",
                     std::vector<size_t>* central_at = nullptr) {
  std::string out, central;
  std::vector<size_t> cd_offsets;
  for (const Item& it : items) {
    uint32_t crc = zip_crc32(0, reinterpret_cast<const uint8_t*>(it.data.data()), it.data.size());
    size_t local = out.size();
    put32(&out, 0x04034b50);
    put16(&out, 20); put16(&out, it.flags); put16(&out, 0); put16(&out, 0); put16(&out, 0);
    put32(&out, crc); put32(&out, static_cast<uint32_t>(it.data.size())); put32(&out, static_cast<uint32_t>(it.data.size()));
    put16(&out, static_cast<uint32_t>(it.name.size())); put16(&out, 3);
    out += it.name + "pad" + it.data;  // 3 bytes of local extra field, as torch pads
    cd_offsets.push_back(central.size());
    put32(&central, 0x02014b50);
    put16(&central, 20); put16(&central, 20); put16(&central, it.flags); put16(&central, 0); put16(&central, 0); put16(&central, 0);
    put32(&central, crc);
    uint32_t sz = zip64 ? 0xffffffffu : static_cast<uint32_t>(it.data.size());
    put32(&central, sz); put32(&central, sz);
    put16(&central, static_cast<uint32_t>(it.name.size())); put16(&central, zip64 ? 28 : 0); put16(&central, 0);
    put16(&central, 0); put16(&central, 0); put32(&central, 0);
    put32(&central, zip64 ? 0xffffffffu : static_cast<uint32_t>(local));
    central += it.name;
    if (zip64) {
      put16(&central, 1); put16(&central, 24);
      put64(&central, it.data.size()); put64(&central, it.data.size()); put64(&central, local);
    }
  }
  size_t cd_offset = out.size();
  for (size_t& c : cd_offsets) c += cd_offset;
  if (central_at) *central_at = cd_offsets;
  out += central;
  if (zip64) {
    size_t end64 = out.size();
    put32(&out, 0x06064b50); put64(&out, 44); put16(&out, 45); put16(&out, 45); put32(&out, 0); put32(&out, 0);
    put64(&out, items.size()); put64(&out, items.size()); put64(&out, central.size()); put64(&out, cd_offset);
    put32(&out, 0x07064b50); put32(&out, 0); put64(&out, end64); put32(&out, 1);
  }
  put32(&out, 0x06054b50); put16(&out, 0); put16(&out, 0);
  put16(&out, zip64 ? 0xffff : static_cast<uint32_t>(items.size())); put16(&out, zip64 ? 0xffff : static_cast<uint32_t>(items.size()));
  put32(&out, zip64 ? 0xffffffffu : static_cast<uint32_t>(central.size()));
  put32(&out, zip64 ? 0xffffffffu : static_cast<uint32_t>(cd_offset));
  put16(&out, static_cast<uint32_t>(comment.size()));
  return out + comment;
}

Result<ZipArchive> parse(const std::string& z) {
  return ZipArchive::parse(reinterpret_cast<const uint8_t*>(z.data()), z.size(), "t.zip");
}

void expect_error(const std::string& z, const std::string& substring) {
  auto r = parse(z);
  ASSERT_FALSE(r) << "expected: " << substring;
  EXPECT_NE(r.status().message().find(substring), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().rfind("t.zip: ", 0), 0u) << r.status().message();
}

const std::vector<Item> kItems = {{"a/data.pkl", "pickle bytes"}, {"a/data/0", std::string(100, 'x')}, {"a/empty", ""}};

TEST(ZipArchive, Crc32KnownValue) {
  EXPECT_EQ(zip_crc32(0, reinterpret_cast<const uint8_t*>("123456789"), 9), 0xcbf43926u);
}

TEST(ZipArchive, IndexesStoredEntries) {
  for (bool zip64 : {false, true}) {
    std::string z = make_zip(kItems, zip64, "a comment");
    auto r = parse(z);
    ASSERT_TRUE(r) << r.status().to_string();
    EXPECT_EQ(r->is_zip64(), zip64);
    ASSERT_EQ(r->entries().size(), 3u);
    const ZipEntry* e = r->find("a/data/0");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->size, 100u);
    auto p = r->stored_data_checked(*e);
    ASSERT_TRUE(p) << p.status().to_string();
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(*p), 100), kItems[1].data);
    EXPECT_TRUE(r->stored_data_checked(*r->find("a/empty")));
    EXPECT_EQ(r->find("missing"), nullptr);
  }
}

TEST(ZipArchive, RefusesCorruptArchives) {
  expect_error("", "truncated or not a zip archive (0 bytes");
  expect_error(std::string(100, 'z'), "no zip end-of-central-directory record");
  std::string good = make_zip(kItems);
  expect_error(good.substr(0, good.size() - 5), "no zip end-of-central-directory record");
  expect_error(good.substr(20), "zip central directory");  // everything shifted: offsets point wrong

  std::vector<size_t> cd;
  std::string z = make_zip(kItems, false, "", &cd);
  std::string bad = z;
  set32(&bad, cd[1] + 20, 1u << 30);  // compressed size past the end
  expect_error(bad, "zip entry \"a/data/0\" (1073741824 bytes at offset");
  bad = z;
  set32(&bad, cd[1] + 42, 7);  // local header offset into the middle of data
  expect_error(bad, "zip entry \"a/data/0\" points to offset 7, where there is no local header");
  bad = z;
  bad[bad.size() - 12] = 50;  // 50 entries claimed (low byte of the total count)
  expect_error(bad, "zip central directory");
  bad = z;
  set32(&bad, cd[2], 0x12345678);  // a broken central header signature
  expect_error(bad, "zip central directory entry 2 at offset");
  bad = z;
  set32(&bad, bad.size() - 6, 0x7ffffff0u);  // central directory offset past the end
  expect_error(bad, "lies outside the file");

  expect_error(make_zip({{"x", "1"}, {"x", "2"}}), "zip entry \"x\" appears twice");

  std::string z64 = make_zip(kItems, true);
  bad = z64;
  size_t loc = bad.size() - 22 - 20;
  set32(&bad, loc + 8, 3);  // the zip64 locator points at garbage
  expect_error(bad, "zip64 end-of-central-directory locator points to offset 3");
  bad = z64;
  set32(&bad, loc, 0);  // the end record says zip64 but there is no locator
  expect_error(bad, "says zip64 but there is no zip64 locator");
  std::vector<size_t> cd64;
  bad = make_zip(kItems, true, "", &cd64);
  bad[cd64[0] + 46 + 10] = 0x09;  // the zip64 extra field id becomes 0x0009: no zip64 extra field
  expect_error(bad, "no zip64 extra field");
}

TEST(ZipArchive, RefusesUnreadableEntryData) {
  std::string z = make_zip({{"enc", "secret", 1}, {"ok", "data"}});
  auto r = parse(z);
  ASSERT_TRUE(r) << r.status().to_string();
  auto enc = r->stored_data(*r->find("enc"));
  ASSERT_FALSE(enc);
  EXPECT_NE(enc.status().message().find("t.zip: zip entry \"enc\" is encrypted"), std::string::npos);
  // Corrupt the bytes of "ok" after indexing: the CRC check names the entry.
  size_t at = z.find("data");
  z[at] = 'D';
  auto r2 = parse(z);
  ASSERT_TRUE(r2);
  auto ok = r2->stored_data_checked(*r2->find("ok"));
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  ASSERT_FALSE(ok);
  EXPECT_NE(ok.status().message().find("zip entry \"ok\" fails its CRC-32 check"), std::string::npos) << ok.status().message();
#endif
}

}  // namespace
