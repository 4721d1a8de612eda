// libvdit_spm.so: the only code that includes sentencepiece (see sentencepiece_module.h for why it is a module
// loaded with RTLD_DEEPBIND). Named *.cc so the vdit_text area glob (*.cpp) leaves it out: it must not be
// linked into any library or program, only built as a module by dit/text/CMakeLists.txt.
#include <sentencepiece_processor.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "dit/text/sentencepiece_module.h"

struct vdit_spm {
  sentencepiece::SentencePieceProcessor sp;
};

namespace {

void set_err(char* err, size_t err_size, const std::string& msg) {
  if (err && err_size > 0) std::snprintf(err, err_size, "%s", msg.c_str());
}

}  // namespace

#define VDIT_SPM_EXPORT extern "C" __attribute__((visibility("default")))

VDIT_SPM_EXPORT int vdit_spm_abi(void) { return VDIT_SPM_MODULE_ABI; }

VDIT_SPM_EXPORT vdit_spm* vdit_spm_open(const char* path, char* err, size_t err_size) {
  try {
    auto* m = new vdit_spm;
    const auto st = m->sp.Load(path);
    if (!st.ok()) {
      set_err(err, err_size, st.ToString());
      delete m;
      return nullptr;
    }
    return m;
  } catch (const std::exception& e) {
    set_err(err, err_size, e.what());
  } catch (...) {
    set_err(err, err_size, "unknown exception");
  }
  return nullptr;
}

VDIT_SPM_EXPORT void vdit_spm_close(vdit_spm* model) { delete model; }

VDIT_SPM_EXPORT int vdit_spm_encode(const vdit_spm* model, const char* text, size_t len, int32_t** ids, int64_t* count,
                                    char* err, size_t err_size) {
  try {
    std::vector<int> v;
    const auto st = model->sp.Encode(absl::string_view(text, len), &v);
    if (!st.ok()) {
      set_err(err, err_size, st.ToString());
      return -1;
    }
    *ids = static_cast<int32_t*>(std::malloc((v.size() + 1) * sizeof(int32_t)));
    if (!*ids) {
      set_err(err, err_size, "out of memory");
      return -1;
    }
    for (size_t i = 0; i < v.size(); ++i) (*ids)[i] = v[i];
    *count = static_cast<int64_t>(v.size());
    return 0;
  } catch (const std::exception& e) {
    set_err(err, err_size, e.what());
  } catch (...) {
    set_err(err, err_size, "unknown exception");
  }
  return -1;
}

VDIT_SPM_EXPORT void vdit_spm_free(void* p) { std::free(p); }

VDIT_SPM_EXPORT int64_t vdit_spm_piece_size(const vdit_spm* model) { return model->sp.GetPieceSize(); }

VDIT_SPM_EXPORT int32_t vdit_spm_piece_to_id(const vdit_spm* model, const char* piece, size_t len) {
  const absl::string_view p(piece, len);
  const int id = model->sp.PieceToId(p);
  // PieceToId answers unk_id for unknown pieces; only the unknown piece itself may map there.
  if (id < 0 || (id == model->sp.unk_id() && model->sp.IdToPiece(id) != std::string(piece, len))) return -1;
  return id;
}

VDIT_SPM_EXPORT int64_t vdit_spm_id_to_piece(const vdit_spm* model, int32_t id, char* buf, size_t buf_size) {
  if (id < 0 || id >= model->sp.GetPieceSize()) return -1;
  const std::string& s = model->sp.IdToPiece(id);
  if (buf && buf_size > 0) std::snprintf(buf, buf_size, "%s", s.c_str());
  return static_cast<int64_t>(s.size());
}

VDIT_SPM_EXPORT void vdit_spm_special_ids(const vdit_spm* model, int32_t ids[4]) {
  ids[0] = model->sp.pad_id();
  ids[1] = model->sp.eos_id();
  ids[2] = model->sp.unk_id();
  ids[3] = model->sp.bos_id();
}
