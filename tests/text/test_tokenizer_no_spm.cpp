// Builds without sentencepiece: loading a tokenizer fails with `unsupported` and says how to get it.
#include <gtest/gtest.h>

#include "dit/text/tokenizer.h"
#include "tests/text/text_test_util.h"

using namespace vdit;

TEST(Tokenizer, WithoutSentencepieceSaysHowToInstall) {
  auto t = text::Tokenizer::load(test::text_data("tiny_unigram.model"));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.status().code(), StatusCode::unsupported);
  EXPECT_NE(t.status().message().find("libsentencepiece-dev"), std::string::npos) << t.status().message();
}
