// Lookup of named HTML character references for html_unescape: a fixed, documented subset (HTML 4.01 +
// &apos; + HTML5's legacy names with and without ';'), not the full HTML5 list; see html_entities.cpp.
#pragma once

#include <cstddef>
#include <string_view>

namespace vdit::text {

// `name` is the reference without '&', including its ';' if it has one ("amp;", "eacute"). Returns the
// UTF-8 replacement, or nullptr when the name is not in the table. Forms without ';' exist only for the
// legacy names (as in HTML5 and Python's html.entities.html5).
const char* html_entity_lookup(std::string_view name);

// Number of entries in the table (for tests).
size_t html_entity_count();

}  // namespace vdit::text
