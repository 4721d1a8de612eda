// Prompt cleaning: a strict UTF-8 decoder, Python's html.unescape rules over code points (so the 32-character
// name limit and prefix slicing count characters, as in Python), and the whitespace collapse.
#include "dit/text/text_clean.h"

#include <algorithm>
#include <cstdint>

#include "dit/text/html_entities.h"

namespace vdit::text {
namespace {

using CodePoints = std::u32string;

Result<CodePoints> decode_utf8(std::string_view s) {
  CodePoints out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<uint8_t>(s[i]);
    int n = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    char32_t c = n == 1 ? b0 : n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    bool ok = n > 0 && i + n <= s.size();
    for (int k = 1; ok && k < n; ++k) {
      const auto b = static_cast<uint8_t>(s[i + k]);
      ok = (b & 0xC0) == 0x80;
      c = (c << 6) | (b & 0x3F);
    }
    // Reject overlong forms, UTF-16 surrogates and values past U+10FFFF, as Python's decoder does.
    const char32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (ok) ok = c >= min_for_len[n] && c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF);
    if (!ok) {
      return invalid_argument(strfmt("prompt is not valid UTF-8 (byte 0x%02x at offset %zu); pass UTF-8 text", b0, i));
    }
    out.push_back(c);
    i += static_cast<size_t>(n);
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string encode_utf8(const CodePoints& cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t c : cps) append_utf8(out, c);
  return out;
}

void append_utf8_text(CodePoints& out, const char* utf8) {
  // Table values are valid UTF-8 by construction (generated from Python's strings).
  auto cps = decode_utf8(utf8);
  if (cps) out += *cps;
}

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_ascii_hex(char32_t c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
int hex_value(char32_t c) {
  return is_ascii_digit(c) ? int(c - '0') : (c >= 'a' ? int(c - 'a' + 10) : int(c - 'A' + 10));
}

// Python's html._invalid_charrefs for 0x80..0x9F: the Windows-1252 reading (5 undefined bytes map to themselves).
const char32_t kCp1252[32] = {0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
                              0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
                              0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};

// Python's html._invalid_codepoints (after _invalid_charrefs took 0x00, 0x0D and 0x80..0x9F): dropped.
bool is_dropped_codepoint(uint64_t n) {
  if ((n >= 0x1 && n <= 0x8) || n == 0xB || (n >= 0xE && n <= 0x1F) || (n >= 0x7F && n <= 0x9F)) return true;
  if (n >= 0xFDD0 && n <= 0xFDEF) return true;
  return n <= 0x10FFFF && (n & 0xFFFE) == 0xFFFE;  // U+xFFFE and U+xFFFF of every plane
}

// Appends the replacement of numeric reference `n` (saturated at 0x110000 for huge values).
void append_numeric(CodePoints& out, uint64_t n) {
  if (n == 0x00) {
    out.push_back(0xFFFD);
  } else if (n == 0x0D) {
    out.push_back(0x0D);
  } else if (n >= 0x80 && n <= 0x9F) {
    out.push_back(kCp1252[n - 0x80]);
  } else if ((n >= 0xD800 && n <= 0xDFFF) || n > 0x10FFFF) {
    out.push_back(0xFFFD);
  } else if (!is_dropped_codepoint(n)) {
    out.push_back(static_cast<char32_t>(n));
  }
}

bool is_name_char(char32_t c) {
  return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' && c != '#' && c != ';';
}

// Table lookup of an all-ASCII name given as code points (non-ASCII names are never in the table).
const char* lookup(const CodePoints& s, size_t begin, size_t len) {
  std::string name;
  name.reserve(len);
  for (size_t i = begin; i < begin + len; ++i) {
    if (s[i] >= 0x80) return nullptr;
    name.push_back(static_cast<char>(s[i]));
  }
  return html_entity_lookup(name);
}

// One pass of html.unescape: regex `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)` replaced
// left to right; where no alternative matches, the '&' stays and the scan moves one character on.
CodePoints unescape_once(const CodePoints& s) {
  CodePoints out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] != '&') {
      out.push_back(s[i++]);
      continue;
    }
    size_t p = i + 1;
    if (p + 1 < n && s[p] == '#' && is_ascii_digit(s[p + 1])) {
      uint64_t v = 0;
      size_t q = p + 1;
      for (; q < n && is_ascii_digit(s[q]); ++q) v = std::min<uint64_t>(v * 10 + (s[q] - '0'), 0x110000);
      if (q < n && s[q] == ';') ++q;
      append_numeric(out, v);
      i = q;
      continue;
    }
    if (p + 2 < n && s[p] == '#' && (s[p + 1] == 'x' || s[p + 1] == 'X') && is_ascii_hex(s[p + 2])) {
      uint64_t v = 0;
      size_t q = p + 2;
      for (; q < n && is_ascii_hex(s[q]); ++q) v = std::min<uint64_t>(v * 16 + hex_value(s[q]), 0x110000);
      if (q < n && s[q] == ';') ++q;
      append_numeric(out, v);
      i = q;
      continue;
    }
    size_t q = p;
    while (q < n && q - p < 32 && is_name_char(s[q])) ++q;
    if (q == p) {  // no alternative matches: keep the '&'
      out.push_back('&');
      ++i;
      continue;
    }
    if (q < n && s[q] == ';') ++q;
    const size_t len = q - p;  // the name with its ';' if any
    if (const char* v = lookup(s, p, len)) {
      append_utf8_text(out, v);
    } else {
      // Longest prefix of at least 2 characters that is a (legacy, ';'-less) name, as Python does.
      size_t x = len - 1;
      for (; x >= 2; --x) {
        if (const char* pv = lookup(s, p, x)) {
          append_utf8_text(out, pv);
          out.append(s, p + x, len - x);
          break;
        }
      }
      if (x < 2) out.append(s, i, len + 1);  // unknown: left as "&name"
    }
    i = q;
  }
  return out;
}

}  // namespace

bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

Result<std::string> html_unescape(std::string_view utf8) {
  VDIT_ASSIGN(CodePoints cps, decode_utf8(utf8));
  return encode_utf8(unescape_once(cps));
}

Result<std::string> clean_prompt(std::string_view utf8) {
  VDIT_ASSIGN(CodePoints cps, decode_utf8(utf8));
  CodePoints text = unescape_once(unescape_once(cps));
  // re.sub(r'\s+', ' ', text).strip(); the earlier strip() of basic_clean changes nothing after this.
  CodePoints out;
  out.reserve(text.size());
  bool pending_space = false;
  for (char32_t c : text) {
    if (is_python_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return encode_utf8(out);
}

}  // namespace vdit::text
