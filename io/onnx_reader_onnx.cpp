// open_onnx in builds with ONNX: loads the reader module libvdit_onnx.so (see io/plugins/onnx_plugin.h
// for why it is a module) on first use and forwards to it. Search order: $VDIT_ONNX_MODULE, the folder of
// this library/executable and its ../lib, the build tree, then the dynamic loader's path.
#include <dlfcn.h>

#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <vector>

#include "io/plugins/onnx_plugin.h"
#include "io/tensor_file.h"

namespace vdit {
namespace {

using OpenFn = int (*)(const char*, void**, int*, char*, size_t);

std::string folder_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::vector<std::string> module_candidates() {
  std::vector<std::string> c;
  if (const char* env = std::getenv("VDIT_ONNX_MODULE")) c.emplace_back(env);
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&module_candidates), &info) && info.dli_fname) {
    std::string self = info.dli_fname;
    if (self.find('/') == std::string::npos) {
      char buf[4096];
      ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
      if (n > 0) self.assign(buf, static_cast<size_t>(n));
    }
    c.push_back(folder_of(self) + "/libvdit_onnx.so");
    c.push_back(folder_of(self) + "/../lib/libvdit_onnx.so");
  }
#ifdef VDIT_ONNX_MODULE_BUILD_PATH
  c.emplace_back(VDIT_ONNX_MODULE_BUILD_PATH);
#endif
  c.emplace_back("libvdit_onnx.so");
  return c;
}

Result<OpenFn> load_module() {
  static std::mutex mu;
  static OpenFn fn = nullptr;
  static std::string tried;
  std::lock_guard<std::mutex> lock(mu);
  if (fn) return fn;
  tried.clear();
  for (const std::string& path : module_candidates()) {
    void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!h) {
      tried += (tried.empty() ? "" : ", ") + path;
      continue;
    }
    fn = reinterpret_cast<OpenFn>(::dlsym(h, "vdit_onnx_plugin_open_v1"));
    if (fn) return fn;
    tried += (tried.empty() ? "" : ", ") + path + " (no entry point)";
  }
  return unsupported("the ONNX reader module libvdit_onnx.so was not found (looked at: " + tried +
                     "); install it next to vdit or set VDIT_ONNX_MODULE to its path");
}

}  // namespace

Result<std::unique_ptr<TensorFile>> open_onnx(const std::string& path) {
  VDIT_ASSIGN(OpenFn fn, load_module());
  void* file = nullptr;
  int code = 0;
  char message[2048] = {0};
  if (!fn(path.c_str(), &file, &code, message, sizeof(message))) return Status(static_cast<StatusCode>(code), message);
  return std::unique_ptr<TensorFile>(static_cast<TensorFile*>(file));
}

}  // namespace vdit
