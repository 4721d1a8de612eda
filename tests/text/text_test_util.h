// Helpers shared by the text tests: a per-test temporary folder, JSON test data, golden tensors as f32,
// running the vdit CLI.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "io/tensor_file.h"
#include "tests/harness/test_util.h"

namespace vdit::test {

// A fresh folder under the build tree, named after the running test, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(VDIT_BINARY_DIR) / "test_tmp" /
            (std::string("text_") + info->test_suite_name() + "_" + info->name() + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::json::parse(ss.str());
}

inline std::string text_data(const std::string& name) { return data_path("text/" + name); }

// A tensor of a file as f32 with a new shape (the goldens carry a leading batch dim of 1).
inline Tensor golden_f32(const TensorFile& f, const std::string& name, const Shape& shape) {
  auto t = f.tensor_f32(name);
  EXPECT_TRUE(t) << t.status().to_string();
  if (!t) return {};
  auto r = t->reshape(shape);
  EXPECT_TRUE(r) << r.status().to_string();
  return r ? *r : Tensor();
}

// Official -> HF UMT5 names, as in wan.md §2.4.
inline std::string t5_hf_name(const std::string& n) {
  static const std::vector<std::pair<std::regex, std::string>> rules = {
      {std::regex("^token_embedding\\.weight$"), "shared.weight"},
      {std::regex("^blocks\\.(\\d+)\\.norm1\\.weight$"), "encoder.block.$1.layer.0.layer_norm.weight"},
      {std::regex("^blocks\\.(\\d+)\\.attn\\.([qkvo])\\.weight$"), "encoder.block.$1.layer.0.SelfAttention.$2.weight"},
      {std::regex("^blocks\\.(\\d+)\\.pos_embedding\\.embedding\\.weight$"),
       "encoder.block.$1.layer.0.SelfAttention.relative_attention_bias.weight"},
      {std::regex("^blocks\\.(\\d+)\\.norm2\\.weight$"), "encoder.block.$1.layer.1.layer_norm.weight"},
      {std::regex("^blocks\\.(\\d+)\\.ffn\\.gate\\.0\\.weight$"),
       "encoder.block.$1.layer.1.DenseReluDense.wi_0.weight"},
      {std::regex("^blocks\\.(\\d+)\\.ffn\\.fc1\\.weight$"), "encoder.block.$1.layer.1.DenseReluDense.wi_1.weight"},
      {std::regex("^blocks\\.(\\d+)\\.ffn\\.fc2\\.weight$"), "encoder.block.$1.layer.1.DenseReluDense.wo.weight"},
      {std::regex("^norm\\.weight$"), "encoder.final_layer_norm.weight"},
  };
  for (const auto& [re, fmt] : rules) {
    if (std::regex_match(n, re)) return std::regex_replace(n, re, fmt);
  }
  ADD_FAILURE() << "no HF name for " << n;
  return n;
}

// Runs the CLI named by $VDIT_CLI (set by the ctest test_text_cli) with `args`; returns its exit status
// and fills `output` with stdout + stderr.
inline int run_cli(const std::string& args, std::string* output) {
  const std::string cmd = std::string(std::getenv("VDIT_CLI")) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  output->clear();
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) output->append(buf, n);
  const int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace vdit::test

#define VDIT_REQUIRE_CLI() \
  if (!std::getenv("VDIT_CLI")) GTEST_SKIP() << "runs under ctest test_text_cli (sets VDIT_CLI)"
