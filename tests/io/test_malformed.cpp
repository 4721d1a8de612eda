// Every file in tests/data/malformed/ goes through open_tensor_file and must fail with a one-line
// message that names the file and contains the substring EXPECTED.json lists for it. A file with no
// expectation (or an expectation with no file) fails the test, so the list stays complete.
#include <gtest/gtest.h>
#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "io/tensor_file.h"
#include "tests/harness/test_util.h"
#include "tests/io/io_test_util.h"

using namespace vdit;

namespace vdit::test {
bool onnx_built();  // test_onnx_support_{onnx,no_onnx}.cpp
}

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Inputs, not helpers: external-data files (*.bin) and the expectations themselves are skipped.
std::vector<std::string> malformed_inputs(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n[0] == '.' || n == "EXPECTED.json" || ends_with(n, ".bin")) continue;
      names.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Malformed, EveryFileFailsWithItsMessage) {
  const std::string dir = test::data_path("malformed");
  std::vector<uint8_t> raw = test::read_bytes(dir + "/EXPECTED.json");
  auto expected = nlohmann::json::parse(raw.begin(), raw.end(), nullptr, false);
  ASSERT_TRUE(expected.is_object()) << dir << "/EXPECTED.json";
  std::vector<std::string> names = malformed_inputs(dir);
  ASSERT_GE(names.size(), 50u);
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(expected.contains(name)) << "add an expected message for " << name << " to EXPECTED.json";
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION  // the fuzz build skips CRC checks (tests/fuzz/CMakeLists.txt)
    if (name == "pth_bad_crc.pth") continue;
#endif
    std::string want = expected[name].get<std::string>();
    if (ends_with(name, ".onnx") && !test::onnx_built()) want = "built without ONNX support";
    std::string path = dir + "/" + name;
    auto f = open_tensor_file(path);
    ASSERT_FALSE(f) << "opened without error";
    const Status& s = f.status();
    EXPECT_NE(s.code(), StatusCode::internal);
    EXPECT_NE(s.message().find(want), std::string::npos) << "message: " << s.message() << "\nwanted: " << want;
    EXPECT_NE(s.message().find(path), std::string::npos) << "the message must name the file: " << s.message();
    EXPECT_EQ(s.message().find('\n'), std::string::npos) << "one line: " << s.message();
  }
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    EXPECT_TRUE(std::find(names.begin(), names.end(), it.key()) != names.end()) << "EXPECTED.json lists a missing file " << it.key();
  }
}

// Every prefix of a valid checkpoint fails cleanly (or, for the complete file, opens).
TEST(Malformed, EveryTruncationOfACheckpointFailsCleanly) {
  for (const char* rel : {"io/pth/nested.pth", "io/onnx/model_raw.onnx", "io/pth/tensors.expected.safetensors"}) {
    std::string src = test::data_path(rel);
    std::vector<uint8_t> bytes = test::read_bytes(src);
    ASSERT_FALSE(bytes.empty()) << src;
    std::string ext = std::string(rel).substr(std::string(rel).rfind('.'));
    std::string tmp = std::string(VDIT_BINARY_DIR) + "/test_tmp_truncated" + ext;
    if (ext == ".onnx" && !test::onnx_built()) continue;
    size_t step = std::max<size_t>(1, bytes.size() / 150);
    for (size_t n = 0; n < bytes.size(); n += step) {
      test::write_bytes(tmp, std::string(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
      auto f = open_tensor_file(tmp);
      // A protobuf cut at a field boundary is a valid, smaller model; everything else must fail.
      if (f && ext == ".onnx") continue;
      ASSERT_FALSE(f) << rel << " cut to " << n << " bytes opened";
      EXPECT_NE(f.status().message().find(tmp), std::string::npos) << f.status().message();
    }
    std::remove(tmp.c_str());
  }
}

}  // namespace
