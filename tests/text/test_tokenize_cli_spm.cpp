// `vdit tokenize` prints the same ids as python sentencepiece (first case of tokenizer_cases.json) and its
// --out file feeds `vdit forward t5`. Runs only under the ctest test_text_cli (VDIT_CLI set); built only
// with sentencepiece.
#include <gtest/gtest.h>

#include <sstream>

#include "tests/text/text_test_util.h"

using namespace vdit;

TEST(TokenizeCli, PrintsPythonIdsAndFeedsForwardT5) {
  VDIT_REQUIRE_CLI();
  const auto doc = test::read_json(test::text_data("tokenizer_cases.json"));
  const auto& c = doc.at("cases").at(0);
  const std::string prompt = c.at("prompt");
  ASSERT_EQ(prompt.find('\''), std::string::npos);
  test::TempDir dir;
  std::string out;
  ASSERT_EQ(test::run_cli("tokenize --tokenizer " + test::text_data("tiny_unigram.model") + " --prompt '" + prompt +
                              "' --out " + dir.file("ids.safetensors"),
                          &out),
            0)
      << out;
  std::vector<int32_t> printed;
  std::istringstream ss(out);
  for (int32_t v; ss >> v;) printed.push_back(v);
  const auto ids = c.at("ids").get<std::vector<int32_t>>();
  const int64_t length = c.at("length");
  EXPECT_EQ(printed, std::vector<int32_t>(ids.begin(), ids.begin() + length)) << out;

  ASSERT_EQ(test::run_cli("forward t5 --weights " + test::text_data("t5_tiny_weights.safetensors") + " --inputs " +
                              dir.file("ids.safetensors") + " --out " + dir.file("out.safetensors"),
                          &out),
            0)
      << out;
  auto f = open_tensor_file(dir.file("out.safetensors"));
  ASSERT_TRUE(f);
  EXPECT_EQ(shape_str((*f)->find("out")->shape), "[512, 64]");
}
