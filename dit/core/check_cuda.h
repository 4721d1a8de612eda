// VDIT_CHECK overloads for the CUDA runtime, cuBLAS and cuBLASLt. Include only from CUDA translation
// units (*.cu, *_cuda.cpp); cuDNN's overloads are in check_cudnn.h.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "dit/core/check.h"

namespace vdit {

inline bool call_succeeded(cudaError_t e) { return e == cudaSuccess; }
inline Status call_failure(cudaError_t e, const char* expr, const char* file, int line) {
  StatusCode code = e == cudaErrorMemoryAllocation ? StatusCode::out_of_memory : StatusCode::device_error;
  return make_call_failure(code, "CUDA", static_cast<long>(e), cudaGetErrorString(e), expr, file, line);
}

inline bool call_succeeded(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS; }
inline Status call_failure(cublasStatus_t s, const char* expr, const char* file, int line) {
  StatusCode code = s == CUBLAS_STATUS_ALLOC_FAILED ? StatusCode::out_of_memory
                    : s == CUBLAS_STATUS_NOT_SUPPORTED ? StatusCode::unsupported
                                                       : StatusCode::device_error;
  return make_call_failure(code, "cuBLAS", static_cast<long>(s), cublasGetStatusString(s), expr, file, line);
}

}  // namespace vdit

// After a kernel launch: reports launch-configuration errors without synchronizing.
#define VDIT_CHECK_LAUNCH() VDIT_CHECK(cudaGetLastError())
