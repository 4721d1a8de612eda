// libFuzzer target: open_safetensors on arbitrary bytes (header length, JSON, dtypes, offsets).
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = vdit::fuzz::work_dir() + "/input.safetensors";
  vdit::fuzz::write_file(path, data, size);
  auto f = vdit::open_safetensors(path);
  if (f) vdit::fuzz::touch_all(**f);
  return 0;
}
