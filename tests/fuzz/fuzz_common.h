// Shared by the file-based fuzzers: each input is written to one file in a private tmpfs folder
// (the readers take paths, and ONNX external data resolves next to the model), then every byte of
// every tensor the reader returns is read, so a pointer outside the file's bytes faults.
#pragma once

#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "io/tensor_file.h"

namespace vdit::fuzz {

// A folder of this process's own under /dev/shm (or /tmp), created once.
inline const std::string& work_dir() {
  static char path[256];  // no destructor: still valid in the atexit handler
  static const std::string dir = [] {
    std::string base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string d = base + "/vdit_fuzz_" + std::to_string(::getpid());
    ::mkdir(d.c_str(), 0700);
    std::snprintf(path, sizeof(path), "%s", d.c_str());
    std::atexit([] {  // libFuzzer ends with exit(): remove the folder and what the fuzzer wrote in it
      ::nftw(path, [](const char* p, const struct stat*, int, FTW*) { return std::remove(p); }, 8, FTW_DEPTH | FTW_PHYS);
    });
    return d;
  }();
  return dir;
}

inline void write_file(const std::string& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();  // the harness itself is broken: stop loudly
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

inline void copy_file(const std::string& dst, const std::string& src) {
  std::FILE* in = std::fopen(src.c_str(), "rb");
  if (!in) return;
  std::string bytes;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), in)) > 0;) bytes.append(buf, n);
  std::fclose(in);
  write_file(dst, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// Reads every tensor byte and, for small tensors, the f32 conversion.
inline uint64_t touch_all(const TensorFile& f) {
  uint64_t sum = 0;
  for (const TensorEntry& e : f.entries()) {
    for (size_t i = 0; i < e.nbytes; ++i) sum += e.data[i];
    if (e.nbytes <= (1u << 16)) {
      auto t = f.tensor_f32(e.name);
      if (t) sum += static_cast<uint64_t>(t->numel());
    }
  }
  return sum;
}

}  // namespace vdit::fuzz
