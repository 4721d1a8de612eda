// SentencePieceModel over libvdit_spm.so (sentencepiece_module.h says why sentencepiece lives in a module).
// The module is found, in order: $VDIT_SPM_MODULE; next to the library or program holding this code (same
// folder, ../lib, lib/); the build tree's copy; the dynamic loader's search path. It is loaded once, with
// RTLD_DEEPBIND, and stays loaded.
#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "dit/text/sentencepiece_model.h"
#include "dit/text/sentencepiece_module.h"

namespace vdit::text {
namespace {

constexpr const char* kModuleName = "libvdit_spm.so";

struct Module {
  vdit_spm_open_fn open = nullptr;
  vdit_spm_close_fn close = nullptr;
  vdit_spm_encode_fn encode = nullptr;
  vdit_spm_free_fn free = nullptr;
  vdit_spm_piece_size_fn piece_size = nullptr;
  vdit_spm_piece_to_id_fn piece_to_id = nullptr;
  vdit_spm_id_to_piece_fn id_to_piece = nullptr;
  vdit_spm_special_ids_fn special_ids = nullptr;
};

std::vector<std::string> candidate_paths() {
  if (const char* env = std::getenv("VDIT_SPM_MODULE"); env && *env) return {env};
  std::vector<std::string> dirs;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&candidate_paths), &info) && info.dli_fname && std::strchr(info.dli_fname, '/')) {
    dirs.push_back(std::filesystem::path(info.dli_fname).parent_path().string());
  }
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    dirs.push_back(std::filesystem::path(exe).parent_path().string());
  }
  std::vector<std::string> out;
  for (const std::string& d : dirs) {
    for (const char* rel : {"", "../lib/", "lib/"}) out.push_back(d + "/" + rel + kModuleName);
  }
#ifdef VDIT_SPM_MODULE_BUILD_PATH
  out.push_back(VDIT_SPM_MODULE_BUILD_PATH);
#endif
  out.push_back(kModuleName);  // LD_LIBRARY_PATH, rpath, system folders
  return out;
}

template <class F>
bool bind(void* h, const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(h, name));
  return fn != nullptr;
}

Result<const Module*> load_module() {
  static std::once_flag once;
  static Module module;
  static Status status;
  std::call_once(once, [] {
    std::string tried;
    for (const std::string& path : candidate_paths()) {
      if (path.find('/') != std::string::npos && !std::filesystem::exists(path)) {
        tried += "\n  " + path + ": absent";
        continue;
      }
      void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (!h) {
        const char* e = dlerror();
        tried += "\n  " + path + ": " + (e ? e : "dlopen failed");
        continue;
      }
      auto abi = reinterpret_cast<vdit_spm_abi_fn>(dlsym(h, "vdit_spm_abi"));
      Module m;
      const bool ok = abi && abi() == VDIT_SPM_MODULE_ABI && bind(h, "vdit_spm_open", m.open) &&
                      bind(h, "vdit_spm_close", m.close) && bind(h, "vdit_spm_encode", m.encode) &&
                      bind(h, "vdit_spm_free", m.free) && bind(h, "vdit_spm_piece_size", m.piece_size) &&
                      bind(h, "vdit_spm_piece_to_id", m.piece_to_id) &&
                      bind(h, "vdit_spm_id_to_piece", m.id_to_piece) && bind(h, "vdit_spm_special_ids", m.special_ids);
      if (!ok) {
        tried += "\n  " + path + ": not a vdit sentencepiece module of ABI " + std::to_string(VDIT_SPM_MODULE_ABI);
        dlclose(h);
        continue;
      }
      module = m;
      return;
    }
    status = not_found(std::string("the sentencepiece module ") + kModuleName +
                       " of this vdit build was not found or "
                       "could not be loaded; build target vdit_spm and keep it next to the program or in ../lib, or "
                       "set VDIT_SPM_MODULE to its path. Tried:" +
                       tried);
  });
  if (!status.is_ok()) return status;
  return &module;
}

class ModuleModel final : public SentencePieceModel {
 public:
  ModuleModel(const Module* m, vdit_spm* h) : m_(m), h_(h) { m_->special_ids(h_, special_); }
  ~ModuleModel() override { m_->close(h_); }

  Result<std::vector<int32_t>> encode(std::string_view text) const override {
    int32_t* ids = nullptr;
    int64_t n = 0;
    char err[512] = {0};
    if (m_->encode(h_, text.data(), text.size(), &ids, &n, err, sizeof err) != 0) {
      return internal_error(std::string("sentencepiece could not encode the prompt: ") + err);
    }
    std::vector<int32_t> out(ids, ids + n);
    m_->free(ids);
    return out;
  }
  int64_t vocab_size() const override { return m_->piece_size(h_); }
  int32_t piece_id(std::string_view piece) const override { return m_->piece_to_id(h_, piece.data(), piece.size()); }
  std::string piece(int32_t id) const override {
    char buf[256];
    const int64_t n = m_->id_to_piece(h_, id, buf, sizeof buf);
    if (n < 0) return {};
    if (n < static_cast<int64_t>(sizeof buf)) return std::string(buf, static_cast<size_t>(n));
    std::string big(static_cast<size_t>(n) + 1, '\0');
    m_->id_to_piece(h_, id, big.data(), big.size());
    big.resize(static_cast<size_t>(n));
    return big;
  }
  int32_t pad_id() const override { return special_[0]; }
  int32_t eos_id() const override { return special_[1]; }
  int32_t unk_id() const override { return special_[2]; }
  int32_t bos_id() const override { return special_[3]; }

 private:
  const Module* m_;
  vdit_spm* h_;
  int32_t special_[4] = {-1, -1, -1, -1};
};

}  // namespace

Result<std::unique_ptr<SentencePieceModel>> open_sentencepiece_model(const std::string& path) {
  VDIT_ASSIGN(const Module* m, load_module());
  char err[512] = {0};
  vdit_spm* h = m->open(path.c_str(), err, sizeof err);
  if (!h) {
    return format_error(path + ": not a readable sentencepiece model (" + err +
                        "); pass the checkpoint's google/umt5-xxl/spiece.model");
  }
  return std::unique_ptr<SentencePieceModel>(std::make_unique<ModuleModel>(m, h));
}

}  // namespace vdit::text
