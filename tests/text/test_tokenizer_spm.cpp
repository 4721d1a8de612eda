// Tokenizer against python sentencepiece on the committed tiny unigram model (tokenizer_cases.json, from
// make_tokenizer_data.py): cleaned text, pieces, padded ids and mask, truncation with a logged warning,
// special ids read from the model, folder lookup, and load errors. Built only with sentencepiece.
#include <gtest/gtest.h>

#include <mutex>

#include "dit/core/log.h"
#include "dit/text/text_clean.h"
#include "dit/text/tokenizer.h"
#include "tests/text/text_test_util.h"

using namespace vdit;
using namespace vdit::text;

namespace {

// Collects warnings while alive; restores the default sink afterwards.
class LogCapture {
 public:
  LogCapture() {
    set_log_sink([this](LogLevel level, const std::string& msg) {
      std::lock_guard<std::mutex> g(mu_);
      if (level >= LogLevel::warn) warnings_.push_back(msg);
    });
  }
  ~LogCapture() { set_log_sink(nullptr); }
  std::vector<std::string> take() {
    std::lock_guard<std::mutex> g(mu_);
    return std::move(warnings_);
  }

 private:
  std::mutex mu_;
  std::vector<std::string> warnings_;
};

Tokenizer load_tiny() {
  auto t = Tokenizer::load(test::text_data("tiny_unigram.model"));
  EXPECT_TRUE(t) << t.status().to_string();
  return t ? *t : Tokenizer();
}

}  // namespace

TEST(Tokenizer, SpecialIdsComeFromTheModel) {
  Tokenizer t = load_tiny();
  EXPECT_EQ(t.pad_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_EQ(t.unk_id(), 2);
  EXPECT_EQ(t.vocab_size(), 900);
  EXPECT_EQ(t.piece(t.eos_id()), "</s>");
  EXPECT_EQ(t.piece(t.pad_id()), "<pad>");
}

TEST(Tokenizer, MatchesPythonSentencepiece) {
  const auto doc = test::read_json(test::text_data("tokenizer_cases.json"));
  Tokenizer t = load_tiny();
  ASSERT_EQ(doc.at("max_length").get<int64_t>(), 512);
  ASSERT_EQ(doc.at("pad_id").get<int32_t>(), t.pad_id());
  ASSERT_EQ(doc.at("eos_id").get<int32_t>(), t.eos_id());
  int truncated_cases = 0;
  for (const auto& c : doc.at("cases")) {
    const std::string prompt = c.at("prompt");
    const std::string what = "prompt \"" + prompt.substr(0, 60) + "\"";
    auto cleaned = clean_prompt(prompt);
    ASSERT_TRUE(cleaned) << what;
    EXPECT_EQ(*cleaned, c.at("cleaned").get<std::string>()) << what;
    auto pieces = t.encode_pieces(*cleaned);
    ASSERT_TRUE(pieces) << what;
    EXPECT_EQ(*pieces, c.at("pieces").get<std::vector<int32_t>>()) << what;

    LogCapture log;
    auto r = t.encode(prompt);
    ASSERT_TRUE(r) << what << ": " << r.status().to_string();
    EXPECT_EQ(r->ids, c.at("ids").get<std::vector<int32_t>>()) << what;
    const int64_t length = c.at("length");
    EXPECT_EQ(r->length, length) << what;
    ASSERT_EQ(r->mask.size(), 512u) << what;
    for (int64_t i = 0; i < 512; ++i) EXPECT_EQ(r->mask[i], i < length ? 1 : 0) << what << " mask[" << i << "]";
    EXPECT_EQ(r->truncated, c.at("truncated").get<bool>()) << what;
    const auto warnings = log.take();
    if (r->truncated) {
      ++truncated_cases;
      ASSERT_EQ(warnings.size(), 1u) << what;
      EXPECT_NE(warnings[0].find("truncated to 512"), std::string::npos) << warnings[0];
      EXPECT_EQ(r->ids[511], t.eos_id());
    } else {
      EXPECT_TRUE(warnings.empty()) << what << ": " << (warnings.empty() ? "" : warnings[0]);
    }
  }
  EXPECT_EQ(truncated_cases, 1);
}

TEST(Tokenizer, Options) {
  Tokenizer t = load_tiny();
  TokenizerOptions o;
  o.pad = false;
  auto r = t.encode("A cat", o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ids.size(), static_cast<size_t>(r->length));
  EXPECT_EQ(r->ids.back(), t.eos_id());
  o.max_length = 1;  // room for </s> only
  {
    LogCapture log;
    r = t.encode("A cat", o);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->ids, std::vector<int32_t>{t.eos_id()});
    EXPECT_TRUE(r->truncated);
    EXPECT_EQ(log.take().size(), 1u);
  }
  o.max_length = 0;
  r = t.encode("A cat", o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
  o = TokenizerOptions();
  o.clean = false;  // "&amp;" stays text
  auto raw = t.encode("&amp;", o);
  auto cleaned = t.encode("&amp;");
  ASSERT_TRUE(raw && cleaned);
  EXPECT_GT(raw->length, cleaned->length);
  auto bad = t.encode("bad \xff utf8");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), StatusCode::invalid_argument);
}

TEST(Tokenizer, FindsTheModelInAFolder) {
  test::TempDir dir;
  std::filesystem::create_directories(dir.path() / "google" / "umt5-xxl");
  std::filesystem::copy_file(test::text_data("tiny_unigram.model"),
                             dir.path() / "google" / "umt5-xxl" / "spiece.model");
  auto t = Tokenizer::load(dir.path().string());
  ASSERT_TRUE(t) << t.status().to_string();
  EXPECT_EQ(t->vocab_size(), 900);
  EXPECT_NE(t->path().find("spiece.model"), std::string::npos);
}

TEST(Tokenizer, LoadErrorsAreClear) {
  auto missing = Tokenizer::load("/nonexistent/spiece.model");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), StatusCode::not_found);

  test::TempDir dir;
  auto empty = Tokenizer::load(dir.path().string());
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.status().message().find("spiece.model"), std::string::npos) << empty.status().message();

  auto not_a_model = Tokenizer::load(test::text_data("t5_tiny_weights.safetensors"));
  ASSERT_FALSE(not_a_model);
  EXPECT_EQ(not_a_model.status().code(), StatusCode::format_error);
  EXPECT_NE(not_a_model.status().message().find("not a readable sentencepiece model"), std::string::npos)
      << not_a_model.status().message();
}
