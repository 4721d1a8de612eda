// One checking helper for every external library call (CUDA runtime, cuBLAS/cuBLASLt, cuDNN, FFmpeg):
//   VDIT_CHECK(cudaMalloc(&p, n));   // returns a Status naming the expression, file and line on failure
// Each library's header (check_cuda.h, io/ffmpeg_check.h, ...) provides two overloads for its result
// type: `bool call_succeeded(T)` and `Status call_failure(T, const char* expr, const char* file, int line)`.
#pragma once

#include "dit/core/status.h"

namespace vdit {

// Shared formatting: "<library> error <code> (<name>) in `<expr>` at <file>:<line>".
Status make_call_failure(StatusCode code, const char* library, long error_code, const char* error_name,
                         const char* expr, const char* file, int line);

}  // namespace vdit

#define VDIT_CHECK(expr)                                                                  \
  do {                                                                                    \
    auto vdit_rc_ = (expr);                                                               \
    if (!::vdit::call_succeeded(vdit_rc_))                                                \
      return ::vdit::call_failure(vdit_rc_, #expr, __FILE__, __LINE__);                   \
  } while (0)
