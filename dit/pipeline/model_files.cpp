// Model folder layouts and the built-in model's default location.
#include "dit/pipeline/model_files.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace vdit::pipeline {
namespace {

namespace fs = std::filesystem;

bool exists(const std::string& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

std::string join(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

// Official DiT weights: diffusion_pytorch_model.safetensors, its shards or their index.
bool has_official_dit(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("diffusion_pytorch_model", 0) == 0 && name.find(".safetensors") != std::string::npos) return true;
  }
  return false;
}

struct Layout {
  const char* name;
  std::string dit, text_encoder, tokenizer, vae;
  const char* dit_file;  // what is looked for, for messages
};

Result<Layout> detect_layout(const std::string& dir) {
  if (has_official_dit(dir) || exists(join(dir, "Wan2.1_VAE.pth")) ||
      exists(join(dir, "models_t5_umt5-xxl-enc-bf16.pth"))) {
    return Layout{"official",
                  dir,
                  join(dir, "models_t5_umt5-xxl-enc-bf16.pth"),
                  join(dir, "google/umt5-xxl/spiece.model"),
                  join(dir, "Wan2.1_VAE.pth"),
                  "diffusion_pytorch_model*.safetensors"};
  }
  if (exists(join(dir, "transformer")) || exists(join(dir, "model_index.json"))) {
    return Layout{"diffusers",
                  join(dir, "transformer"),
                  join(dir, "text_encoder"),
                  join(dir, "tokenizer"),
                  join(dir, "vae/diffusion_pytorch_model.safetensors"),
                  "transformer/"};
  }
  if (exists(join(dir, "dit.safetensors")) || exists(join(dir, "vae.safetensors")) ||
      exists(join(dir, "text_encoder.safetensors")) || exists(join(dir, "tokenizer.model"))) {
    return Layout{"built-in",
                  join(dir, "dit.safetensors"),
                  join(dir, "text_encoder.safetensors"),
                  join(dir, "tokenizer.model"),
                  join(dir, "vae.safetensors"),
                  "dit.safetensors"};
  }
  return not_found(
      "\"" + dir +
      "\" is not a model folder: it holds none of the official Wan2.1 files "
      "(diffusion_pytorch_model*.safetensors, Wan2.1_VAE.pth, models_t5_umt5-xxl-enc-bf16.pth), a diffusers "
      "layout (transformer/, model_index.json) or the built-in layout (dit.safetensors, vae.safetensors, ...)");
}

std::string exe_dir(const std::string& exe_path) {
  std::string exe = exe_path;
  if (exe.empty()) {
    std::error_code ec;
    exe = fs::read_symlink("/proc/self/exe", ec).string();
  }
  return exe.empty() ? std::string() : fs::path(exe).parent_path().string();
}

// Resolves one part: the caller's own path when given (it must exist), else the layout's path.
Status resolve_part(std::string* out, const std::string& given, const char* option, const char* what,
                    const std::string& layout_path, const Layout* layout, const std::string& dir) {
  if (!given.empty()) {
    if (!exists(given)) return not_found(strfmt("%s \"%s\" (%s) does not exist", what, given.c_str(), option));
    *out = given;
    return Status::ok();
  }
  if (!exists(layout_path)) {
    return not_found(strfmt("model folder \"%s\" (%s layout) has no %s: expected %s; give its path with %s",
                            dir.c_str(), layout->name, what, layout_path.c_str(), option));
  }
  *out = layout_path;
  return Status::ok();
}

}  // namespace

std::vector<std::string> default_model_dir_candidates(const std::string& exe_path) {
  std::vector<std::string> out;
  if (const char* env = std::getenv("VDIT_MODEL_DIR"); env && *env) out.push_back(env);
  std::string dir = exe_dir(exe_path);
  if (!dir.empty()) {
    out.push_back(fs::path(dir + "/../share/vdit/models/vdit-tiny-t2v").lexically_normal().string());
    out.push_back(fs::path(dir + "/../../../samples/models/vdit-tiny-t2v").lexically_normal().string());
  }
#ifdef VDIT_SOURCE_MODEL_DIR
  out.push_back(fs::path(VDIT_SOURCE_MODEL_DIR).lexically_normal().string());
#endif
  std::vector<std::string> unique;  // the exe-relative and configure-time paths are often the same
  for (const auto& c : out) {
    if (std::find(unique.begin(), unique.end(), c) == unique.end()) unique.push_back(c);
  }
  return unique;
}

std::string default_model_dir(const std::string& exe_path) {
  std::vector<std::string> candidates = default_model_dir_candidates(exe_path);
  for (const auto& c : candidates) {
    if (exists(c)) return c;
  }
  return candidates.empty() ? std::string() : candidates.front();
}

Result<ModelFiles> locate_model_files(const ModelPathOverrides& given, const ModelParts& needed) {
  const bool all_given = (!needed.dit || !given.dit.empty()) && (!needed.vae || !given.vae.empty()) &&
                         (!needed.text || (!given.text_encoder.empty() && !given.tokenizer.empty()));
  ModelFiles files;
  files.dir = given.dir;
  Layout layout{};
  const Layout* lp = nullptr;
  if (!all_given) {
    if (files.dir.empty()) {
      files.dir = default_model_dir();
      if (files.dir.empty() || !exists(files.dir)) {
        std::string list;
        for (const auto& c : default_model_dir_candidates()) list += "\n  " + c;
        return not_found("no model folder given (--model DIR) and the built-in model vdit-tiny-t2v was not found in:" +
                         list + "\nset $VDIT_MODEL_DIR or pass --model DIR");
      }
    }
    std::error_code ec;
    if (!fs::exists(files.dir, ec)) return not_found("model folder \"" + files.dir + "\" (--model) does not exist");
    if (!fs::is_directory(files.dir, ec)) {
      return invalid_argument("--model \"" + files.dir +
                              "\" is a file; --model takes a model folder (use --dit for a DiT file)");
    }
    VDIT_ASSIGN(layout, detect_layout(files.dir));
    lp = &layout;
    files.layout = layout.name;
  } else {
    files.layout = "separate files";
  }
  const std::string& dir = files.dir;
  if (needed.dit) {
    if (!given.dit.empty()) {
      if (!exists(given.dit)) return not_found("DiT weights \"" + given.dit + "\" (--dit) do not exist");
      files.dit = given.dit;
    } else {
      const bool present = layout.name == std::string("built-in") ? exists(layout.dit) : has_official_dit(layout.dit);
      if (!present) {
        return not_found(
            strfmt("model folder \"%s\" (%s layout) has no DiT weights: expected %s; give their path with --dit",
                   dir.c_str(), layout.name, join(dir, layout.dit_file).c_str()));
      }
      files.dit = layout.dit;
    }
  }
  if (needed.text) {
    VDIT_TRY(resolve_part(&files.text_encoder, given.text_encoder, "--text-encoder", "text encoder",
                          layout.text_encoder, lp, dir));
    VDIT_TRY(resolve_part(&files.tokenizer, given.tokenizer, "--tokenizer", "tokenizer", layout.tokenizer, lp, dir));
  }
  if (needed.vae) VDIT_TRY(resolve_part(&files.vae, given.vae, "--vae", "VAE", layout.vae, lp, dir));
  return files;
}

}  // namespace vdit::pipeline
