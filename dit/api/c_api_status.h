// Shared pieces of the C API's implementation (not public): the thread's last error message and the mapping
// from vdit::Status to vdit_status. Every exported function ends through `fail` or `ok`.
#pragma once

#include <exception>
#include <new>

#include "dit/api/vdit.h"
#include "dit/core/status.h"

namespace vdit::api {

// The calling thread's last error message ("" if none).
const char* last_error();

// Records `status`'s message as the thread's last error and returns its C code (VDIT_OK for ok).
vdit_status finish(const Status& status);
inline vdit_status ok() { return finish(Status::ok()); }

// Runs `body` (returning Status), turning C++ exceptions into statuses: nothing may unwind into C callers.
template <class F>
vdit_status guarded(F&& body) {
  try {
    return finish(body());
  } catch (const std::bad_alloc&) {
    return finish(out_of_memory("host memory exhausted; use a smaller size or fewer frames"));
  } catch (const std::exception& e) {
    return finish(internal_error(std::string("unexpected exception: ") + e.what()));
  } catch (...) {
    return finish(internal_error("unexpected exception"));
  }
}

}  // namespace vdit::api
