// VDIT_CHECK overloads for FFmpeg return codes, and the bridge that sends FFmpeg's own log lines into
// vdit's log instead of stderr. FFmpeg returns plain ints (>= 0 ok, AVERROR(...) < 0 on failure), so
// they are wrapped in `AvResult` to keep `int` free of a global meaning:
//   VDIT_CHECK(av_result(avformat_write_header(ctx, &opts)));
// Include only from FFmpeg translation units (*_ffmpeg.cpp).
#pragma once

extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
}

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <string>

#include "dit/core/check.h"
#include "dit/core/log.h"

namespace vdit {

struct AvResult {
  int code;  // an FFmpeg return value
};
inline AvResult av_result(int code) { return AvResult{code}; }

inline bool call_succeeded(AvResult r) { return r.code >= 0; }
inline Status call_failure(AvResult r, const char* expr, const char* file, int line) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(r.code, text, sizeof(text));
  StatusCode code = StatusCode::io_error;
  if (r.code == AVERROR(ENOMEM))
    code = StatusCode::out_of_memory;
  else if (r.code == AVERROR(EINVAL))
    code = StatusCode::invalid_argument;
  else if (r.code == AVERROR_ENCODER_NOT_FOUND || r.code == AVERROR_DECODER_NOT_FOUND ||
           r.code == AVERROR_MUXER_NOT_FOUND || r.code == AVERROR_PATCHWELCOME)
    code = StatusCode::unsupported;
  else if (r.code == AVERROR_INVALIDDATA)
    code = StatusCode::format_error;
  return make_call_failure(code, "FFmpeg", r.code, text, expr, file, line);
}

namespace detail {
// FFmpeg calls back with pieces of lines; complete lines go to vdit's log. FFmpeg errors become
// warnings (the Status returned to the caller carries the error itself), its chatter becomes debug.
inline void ffmpeg_log_callback(void* avcl, int level, const char* fmt, va_list args) {
  if (level > AV_LOG_VERBOSE) return;
  thread_local std::string pending;
  thread_local int print_prefix = 1;
  char piece[1024];
  av_log_format_line2(avcl, level, fmt, args, piece, sizeof(piece), &print_prefix);
  pending += piece;
  size_t nl;
  while ((nl = pending.find('\n')) != std::string::npos) {
    std::string line = pending.substr(0, nl);
    pending.erase(0, nl + 1);
    if (line.empty()) continue;
    LogLevel l = level <= AV_LOG_ERROR ? LogLevel::warn : level <= AV_LOG_WARNING ? LogLevel::info : LogLevel::debug;
    log_message(l, "ffmpeg: " + line);
  }
}
}  // namespace detail

// Installs the bridge once per process (FFmpeg's log callback is process-wide).
inline void route_ffmpeg_log() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(detail::ffmpeg_log_callback); });
}

}  // namespace vdit
