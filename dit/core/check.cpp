// Formatting of failed external calls.
#include "dit/core/check.h"

namespace vdit {

Status make_call_failure(StatusCode code, const char* library, long error_code, const char* error_name,
                         const char* expr, const char* file, int line) {
  const char* base = file;
  for (const char* p = file; *p; ++p) {
    if (*p == '/') base = p + 1;
  }
  return Status(code, strfmt("%s error %ld (%s) in `%s` at %s:%d", library, error_code, error_name ? error_name : "?",
                             expr, base, line));
}

}  // namespace vdit
