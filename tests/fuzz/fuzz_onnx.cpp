// libFuzzer target: open_onnx on arbitrary bytes, written as model.onnx next to copies of the
// fixtures' external data files (model_external.bin, weights/extra.bin) so that mutated locations,
// offsets and lengths reach real files.
#include "io/plugins/onnx_plugin.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    const std::string& d = vdit::fuzz::work_dir();
    ::mkdir((d + "/weights").c_str(), 0700);
    std::string src = std::string(VDIT_TEST_DATA_DIR) + "/io/onnx/";
    vdit::fuzz::copy_file(d + "/model_external.bin", src + "model_external.bin");
    vdit::fuzz::copy_file(d + "/weights/extra.bin", src + "weights/extra.bin");
    return d + "/model.onnx";
  }();
  vdit::fuzz::write_file(path, data, size);
  auto f = vdit::open_onnx_in_process(path);
  if (f) vdit::fuzz::touch_all(**f);
  return 0;
}
