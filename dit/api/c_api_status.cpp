// The C API's status mapping, last-error storage, version, build features and log callback (vdit.h).
#include <string>

#include "dit/api/c_api_status.h"
#include "dit/core/log.h"

namespace vdit::api {
namespace {

thread_local std::string t_last_error;

vdit_status to_c(StatusCode code) {
  switch (code) {
    case StatusCode::ok: return VDIT_OK;
    case StatusCode::invalid_argument: return VDIT_INVALID_ARGUMENT;
    case StatusCode::not_found: return VDIT_NOT_FOUND;
    case StatusCode::io_error: return VDIT_IO_ERROR;
    case StatusCode::format_error: return VDIT_FORMAT_ERROR;
    case StatusCode::unsupported: return VDIT_UNSUPPORTED;
    case StatusCode::out_of_memory: return VDIT_OUT_OF_MEMORY;
    case StatusCode::device_error: return VDIT_DEVICE_ERROR;
    case StatusCode::cancelled: return VDIT_CANCELLED;
    case StatusCode::internal: return VDIT_INTERNAL;
  }
  return VDIT_INTERNAL;
}

}  // namespace

const char* last_error() { return t_last_error.c_str(); }

vdit_status finish(const Status& status) {
  if (!status.is_ok()) t_last_error = status.message();
  return to_c(status.code());
}

}  // namespace vdit::api

extern "C" {

const char* vdit_version(void) { return VDIT_VERSION_STRING; }

const char* vdit_status_name(vdit_status status) {
  switch (status) {
    case VDIT_OK: return "ok";
    case VDIT_INVALID_ARGUMENT: return "invalid argument";
    case VDIT_NOT_FOUND: return "not found";
    case VDIT_IO_ERROR: return "I/O error";
    case VDIT_FORMAT_ERROR: return "format error";
    case VDIT_UNSUPPORTED: return "unsupported";
    case VDIT_OUT_OF_MEMORY: return "out of memory";
    case VDIT_DEVICE_ERROR: return "device error";
    case VDIT_CANCELLED: return "cancelled";
    case VDIT_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char* vdit_last_error(void) { return vdit::api::last_error(); }

int vdit_has_feature(const char* name) {
  if (!name) return 0;
  const std::string n = name;
  // VDIT_BUILT_WITH_* come from the build's feature definitions (tools/cmake/sources.cmake).
  if (n == "cuda") return VDIT_BUILT_WITH_CUDA;
  if (n == "cudnn") return VDIT_BUILT_WITH_CUDNN;
  if (n == "ffmpeg") return VDIT_BUILT_WITH_FFMPEG;
  if (n == "opencv") return VDIT_BUILT_WITH_OPENCV;
  if (n == "onnx") return VDIT_BUILT_WITH_ONNX;
  if (n == "sentencepiece") return VDIT_BUILT_WITH_SPM;
  if (n == "blas") return VDIT_BUILT_WITH_BLAS;
  return 0;
}

void vdit_set_log_callback(vdit_log_callback callback, void* user_data, vdit_log_level min_level) {
  if (!callback) {
    vdit::set_log_sink(nullptr);
    vdit::set_log_level(vdit::LogLevel::warn);
    return;
  }
  vdit::set_log_level(static_cast<vdit::LogLevel>(min_level));
  vdit::set_log_sink([callback, user_data](vdit::LogLevel level, const std::string& message) {
    callback(static_cast<vdit_log_level>(level), message.c_str(), user_data);
  });
}

}  // extern "C"
