// Leveled logging through a process-wide callback. The library never writes to stdout/stderr itself:
// the default sink drops everything below `warn` and writes the rest to stderr only until a client
// (the CLI, the C API user) installs its own sink.
#pragma once

#include <functional>
#include <string>

#include "dit/core/status.h"

namespace vdit {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3, none = 4 };

using LogSink = std::function<void(LogLevel, const std::string&)>;

// Installs `sink` (nullptr restores the default). Thread-safe.
void set_log_sink(LogSink sink);
void set_log_level(LogLevel min_level);
LogLevel log_level();
void log_message(LogLevel level, const std::string& message);

const char* log_level_name(LogLevel level);

}  // namespace vdit

#define VDIT_LOG_DEBUG(...) ::vdit::log_message(::vdit::LogLevel::debug, ::vdit::strfmt(__VA_ARGS__))
#define VDIT_LOG_INFO(...) ::vdit::log_message(::vdit::LogLevel::info, ::vdit::strfmt(__VA_ARGS__))
#define VDIT_LOG_WARN(...) ::vdit::log_message(::vdit::LogLevel::warn, ::vdit::strfmt(__VA_ARGS__))
#define VDIT_LOG_ERROR(...) ::vdit::log_message(::vdit::LogLevel::error, ::vdit::strfmt(__VA_ARGS__))
