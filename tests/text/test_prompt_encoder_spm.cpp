// encode_prompt end to end on the tiny tokenizer and the tiny golden T5: the trimmed context must equal the
// first mask.sum() rows of the official full-length run (encode with the 512-token mask), for a short, an
// empty and an over-long prompt. Built only with sentencepiece.
#include <gtest/gtest.h>

#include "dit/text/prompt_encoder.h"
#include "tests/text/text_test_util.h"

using namespace vdit;
using namespace vdit::text;

// Rows computed over Lc tokens vs over 512 tokens differ only in GEMM blocking (f32 rounding).
constexpr double kTrimTol = 1e-5;

TEST(PromptEncoder, TrimmedContextEqualsFullRunPrefix) {
  auto tok = Tokenizer::load(test::text_data("tiny_unigram.model"));
  ASSERT_TRUE(tok) << tok.status().to_string();
  auto enc = T5Encoder::load(test::text_data("t5_tiny_weights.safetensors"));
  ASSERT_TRUE(enc) << enc.status().to_string();
  ASSERT_LE(tok->vocab_size(), enc->config().vocab);
  const auto doc = test::read_json(test::text_data("tokenizer_cases.json"));
  int checked = 0;
  for (const auto& c : doc.at("cases")) {
    const std::string prompt = c.at("prompt");
    if (prompt != "A cat walks on the grass, realistic style." && !prompt.empty() && !c.at("truncated").get<bool>())
      continue;
    auto ctx = encode_prompt(*tok, *enc, prompt);
    ASSERT_TRUE(ctx) << ctx.status().to_string();
    const int64_t length = c.at("length");
    ASSERT_EQ(shape_str(ctx->shape()), shape_str({length, 64})) << prompt.substr(0, 40);
    auto tokens = tok->encode(prompt);
    ASSERT_TRUE(tokens);
    auto full = enc->encode(tokens->ids, tokens->mask);
    ASSERT_TRUE(full);
    auto prefix = Tensor::from_f32(std::vector<float>(full->f32(), full->f32() + length * 64), {length, 64});
    ASSERT_TRUE(prefix);
    test::expect_close(*ctx, *prefix, kTrimTol, "encode_prompt vs full run, prompt \"" + prompt.substr(0, 40) + "\"");
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}
