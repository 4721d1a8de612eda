// libFuzzer target: the .pth reader on arbitrary bytes. The zip index and every entry's CRC pass run on
// an exact-size heap copy first (so ASan sees any overread), then open_pth runs on the file.
#include <vector>

#include "io/zip_archive.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> copy(data, data + size);
  auto zip = vdit::ZipArchive::parse(copy.data(), copy.size(), "input.pth");
  if (zip) {
    for (const vdit::ZipEntry& e : zip->entries()) {
      auto p = zip->stored_data(e);
      if (p) (void)vdit::zip_crc32(0, *p, static_cast<size_t>(e.size));
    }
  }
  static const std::string path = vdit::fuzz::work_dir() + "/input.pth";
  vdit::fuzz::write_file(path, data, size);
  auto f = vdit::open_pth(path);
  if (f) vdit::fuzz::touch_all(**f);
  return 0;
}
