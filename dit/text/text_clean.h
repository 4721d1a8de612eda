// Wan's prompt cleaning before tokenizing (W wan/modules/tokenizers.py, clean='whitespace'): HTML-unescape
// twice, then collapse every whitespace run to one space and strip. Matches Python's html.unescape and
// re.sub(r'\s+', ' ', ...) on the documented entity subset. It deliberately does NOT reproduce
// ftfy.fix_text, which Wan runs first (mojibake repair, curly-quote straightening, ligature and width
// fixes, NFC, control-character removal); dit/text/README.md lists what that changes.
#pragma once

#include <string>
#include <string_view>

#include "dit/core/status.h"

namespace vdit::text {

// Python's str.isspace() (= `\s` of `re` on str): ASCII \t\n\v\f\r, U+001C..001F, space, U+0085, U+00A0,
// U+1680, U+2000..200A, U+2028, U+2029, U+202F, U+205F, U+3000.
bool is_python_space(char32_t c);

// Python 3's html.unescape on UTF-8 text, restricted to the named references of html_entities.h:
//  - named: the 252 HTML 4.01 names and &apos; (with ';'), and HTML5's 106 legacy names (&amp, &lt, &gt,
//    &quot, &nbsp, &copy, &eacute, &AMP, ...) with or without ';', including Python's longest-legacy-prefix
//    rule (&notit; -> "¬it;");
//  - numeric: &#NN; and &#xNN; / &#XNN; with or without ';', with HTML5's replacements (&#0; and surrogates
//    and values past U+10FFFF give U+FFFD, &#128;..&#159; map through Windows-1252, noncharacters and most
//    C0/C1 controls are dropped, &#13; is CR).
// HTML5-only names (&NewLine;, &bigstar;, ...) are left as they are. Fails only on invalid UTF-8 input.
Result<std::string> html_unescape(std::string_view utf8);

// The full Wan cleaning: html_unescape twice, then whitespace runs -> ' ', then strip. Fails only on
// invalid UTF-8 (the message names the byte offset).
Result<std::string> clean_prompt(std::string_view utf8);

}  // namespace vdit::text
