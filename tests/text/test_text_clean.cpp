// Prompt cleaning against Python 3: html.unescape and Wan's full cleaning on 300 random entity-laden strings
// (clean_cases.json, from make_tokenizer_data.py), the whitespace set, the entity subset, invalid UTF-8.
#include <gtest/gtest.h>

#include "dit/text/html_entities.h"
#include "dit/text/text_clean.h"
#include "tests/text/text_test_util.h"

using namespace vdit;
using namespace vdit::text;

TEST(TextClean, MatchesPythonOnRandomEntityStrings) {
  const auto doc = test::read_json(test::text_data("clean_cases.json"));
  const auto& cases = doc.at("cases");
  ASSERT_GE(cases.size(), 300u);
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string in = cases[i].at("input");
    auto once = html_unescape(in);
    ASSERT_TRUE(once) << once.status().to_string();
    EXPECT_EQ(*once, cases[i].at("unescaped_once").get<std::string>())
        << "html_unescape(case " << i << ": " << in << ")";
    auto cleaned = clean_prompt(in);
    ASSERT_TRUE(cleaned) << cleaned.status().to_string();
    EXPECT_EQ(*cleaned, cases[i].at("cleaned").get<std::string>()) << "clean_prompt(case " << i << ": " << in << ")";
  }
}

TEST(TextClean, EntitySubsetBehaviour) {
  EXPECT_EQ(html_entity_count(), 365u);  // 252 HTML 4.01 + apos, + 106 legacy names in both forms (6 new with ;)
  auto u = [](const char* s) { return *html_unescape(s); };
  EXPECT_EQ(u("&amp;&lt;&gt;&quot;&apos;&nbsp;"), "&<>\"'\xc2\xa0");
  EXPECT_EQ(u("&#65;&#x42;&#X43;&#68"), "ABCD");
  EXPECT_EQ(u("&amp;amp;"), "&amp;");  // one level per call
  EXPECT_EQ(u("&notit;"),
            "\xc2\xac"
            "it;");  // longest legacy prefix, as Python
  EXPECT_EQ(u("&AMP;&AMP&LT;"), "&&<");
  EXPECT_EQ(u("&hellip;&mdash;&euro;"), "\xe2\x80\xa6\xe2\x80\x94\xe2\x82\xac");
  // Outside the documented subset (HTML5-only names): left as text, where Python would decode them.
  EXPECT_EQ(u("&NewLine;&bigstar;"), "&NewLine;&bigstar;");
  EXPECT_EQ(*clean_prompt("  a&#10;&#9;b &nbsp; c  "), "a b c");
}

TEST(TextClean, PythonWhitespaceSet) {
  const char32_t spaces[] = {0x9,  0xA,    0xB,    0xC,    0xD,    0x1C,   0x1D,   0x1E,   0x1F,   0x20,  0x85,
                             0xA0, 0x1680, 0x2000, 0x2005, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
  for (char32_t c : spaces) EXPECT_TRUE(is_python_space(c)) << std::hex << static_cast<uint32_t>(c);
  for (char32_t c : {char32_t('a'), char32_t(0x0), char32_t(0x8), char32_t(0x1B), char32_t(0x200B), char32_t(0xFEFF),
                     char32_t(0x180E), char32_t(0x200B)}) {
    EXPECT_FALSE(is_python_space(c)) << std::hex << static_cast<uint32_t>(c);
  }
}

TEST(TextClean, RejectsInvalidUtf8) {
  for (const char* bad : {"ab\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "x\x80y"}) {
    auto r = clean_prompt(bad);
    ASSERT_FALSE(r) << "accepted invalid UTF-8";
    EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
    EXPECT_NE(r.status().message().find("not valid UTF-8"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("offset"), std::string::npos) << r.status().message();
  }
  EXPECT_TRUE(clean_prompt("\xf0\x9f\x90\x95 \xe7\x8c\xab \xc3\xa9"));  // emoji, CJK, Latin-1: fine
}
