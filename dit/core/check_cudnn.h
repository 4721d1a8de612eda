// VDIT_CHECK overloads for cuDNN. Include only from cuDNN translation units (*_cudnn.cpp).
#pragma once

#include <cudnn.h>

#include "dit/core/check.h"

namespace vdit {

inline bool call_succeeded(cudnnStatus_t s) { return s == CUDNN_STATUS_SUCCESS; }
inline Status call_failure(cudnnStatus_t s, const char* expr, const char* file, int line) {
  StatusCode code = s == CUDNN_STATUS_ALLOC_FAILED ? StatusCode::out_of_memory
                    : s == CUDNN_STATUS_NOT_SUPPORTED ? StatusCode::unsupported
                                                      : StatusCode::device_error;
  return make_call_failure(code, "cuDNN", static_cast<long>(s), cudnnGetErrorString(s), expr, file, line);
}

}  // namespace vdit
