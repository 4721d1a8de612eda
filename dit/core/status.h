// Status and Result: how every vdit library function reports failure. The library never aborts or
// prints on an error a caller can cause (bad file, bad shape, out of memory); it returns a Status whose
// message says what was wrong and what to do. Assertions (VDIT_ASSERT) are for broken internal invariants.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace vdit {

enum class StatusCode {
  ok = 0,
  invalid_argument,  // a caller-supplied value is out of range or inconsistent
  not_found,         // a file, tensor or key is missing
  io_error,          // reading or writing failed at the OS level
  format_error,      // a file exists but its content is malformed
  unsupported,       // valid request this build or device cannot serve (missing feature, shape)
  out_of_memory,     // host or device allocation failed
  device_error,      // CUDA / cuBLAS / cuDNN reported an error
  cancelled,         // a progress callback asked to stop
  internal,          // a bug in vdit
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return {}; }

  bool is_ok() const { return code_ == StatusCode::ok; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "format_error: model.safetensors: header length 9999 past the end of the file (120 bytes)"
  std::string to_string() const;
  // Adds context in front of the message: "loading DiT: <message>".
  Status with_context(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::ok;
  std::string message_;
};

// printf-style formatting into a std::string (used for messages everywhere).
std::string strfmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

inline Status invalid_argument(std::string m) { return {StatusCode::invalid_argument, std::move(m)}; }
inline Status not_found(std::string m) { return {StatusCode::not_found, std::move(m)}; }
inline Status io_error(std::string m) { return {StatusCode::io_error, std::move(m)}; }
inline Status format_error(std::string m) { return {StatusCode::format_error, std::move(m)}; }
inline Status unsupported(std::string m) { return {StatusCode::unsupported, std::move(m)}; }
inline Status out_of_memory(std::string m) { return {StatusCode::out_of_memory, std::move(m)}; }
inline Status internal_error(std::string m) { return {StatusCode::internal, std::move(m)}; }

// A value or the Status that explains why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit on purpose
  Result(Status status) : v_(std::move(status)) {}   // NOLINT: must not be ok
  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  Status status() const { return is_ok() ? Status::ok() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

// Report an internal invariant violation (never for caller errors): logs and aborts.
[[noreturn]] void assert_fail(const char* expr, const char* file, int line);

}  // namespace vdit

#define VDIT_CONCAT_INNER(a, b) a##b
#define VDIT_CONCAT(a, b) VDIT_CONCAT_INNER(a, b)

// Return the Status of `expr` from the enclosing function if it is not ok.
#define VDIT_TRY(expr)                                   \
  do {                                                   \
    ::vdit::Status vdit_status_ = (expr);                \
    if (!vdit_status_.is_ok()) return vdit_status_;      \
  } while (0)

// `VDIT_ASSIGN(auto x, make_x())`: unwraps a Result or returns its Status.
#define VDIT_ASSIGN(lhs, expr) VDIT_ASSIGN_IMPL(VDIT_CONCAT(vdit_result_, __LINE__), lhs, expr)
#define VDIT_ASSIGN_IMPL(tmp, lhs, expr)         \
  auto tmp = (expr);                             \
  if (!tmp.is_ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

#define VDIT_ASSERT(cond) \
  do { if (!(cond)) ::vdit::assert_fail(#cond, __FILE__, __LINE__); } while (0)
