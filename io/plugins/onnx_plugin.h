// The ONNX reader lives in a loadable module (libvdit_onnx.so) instead of libvdit because Debian's
// libsentencepiece exports its own copy of protobuf internals: a process that links both it and
// libprotobuf (needed by libonnx_proto) crashes in protobuf's start-up code before main. The module is
// opened with RTLD_LOCAL | RTLD_DEEPBIND (io/onnx_reader_onnx.cpp), so its protobuf never sees
// sentencepiece's symbols. This header is the contract between the two sides.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "io/tensor_file.h"

namespace vdit {
// The reader itself (inside the module; fuzzers link it directly).
Result<std::unique_ptr<TensorFile>> open_onnx_in_process(const std::string& path);
}  // namespace vdit

// Module entry: on success stores a heap TensorFile* (owned by the caller; the module is never unloaded)
// in *file and returns 1; on failure returns 0 with the StatusCode in *code and the message in `message`.
extern "C" int vdit_onnx_plugin_open_v1(const char* path, void** file, int* code, char* message, size_t message_size);
