// DiT weight-file discovery (file, index, official / diffusers / built-in directories) and the merged
// view over index-less shards.
#include "dit/model/wan_files.h"

#include <algorithm>
#include <filesystem>
#include <regex>

namespace vdit::model {
namespace {

namespace fs = std::filesystem;

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

std::optional<std::string> config_beside(const fs::path& dir) {
  fs::path c = dir / "config.json";
  if (is_file(c)) return c.string();
  return std::nullopt;
}

// diffusion_pytorch_model.safetensors.index.json, diffusion_pytorch_model.safetensors, or the
// diffusion_pytorch_model-0000i-of-0000n.safetensors shards (the official 14B ships them; diffusers'
// converter globs them).
std::vector<std::string> find_diffusion_model_files(const fs::path& dir) {
  const char* stem = "diffusion_pytorch_model";
  if (is_file(dir / (std::string(stem) + ".safetensors.index.json"))) {
    return {(dir / (std::string(stem) + ".safetensors.index.json")).string()};
  }
  if (is_file(dir / (std::string(stem) + ".safetensors")))
    return {(dir / (std::string(stem) + ".safetensors")).string()};
  std::vector<std::string> shards;
  static const std::regex shard_re(R"(diffusion_pytorch_model-\d+-of-\d+\.safetensors)");
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && std::regex_match(e.path().filename().string(), shard_re)) {
      shards.push_back(e.path().string());
    }
  }
  std::sort(shards.begin(), shards.end());
  return shards;
}

// A TensorFile over several shards without an index.
class MergedTensorFile : public TensorFile {
 public:
  static Result<std::unique_ptr<TensorFile>> open(const std::vector<std::string>& paths) {
    auto merged = std::unique_ptr<MergedTensorFile>(new MergedTensorFile());
    merged->path_ = paths.front();
    merged->format_ = "safetensors-shards";
    for (const std::string& p : paths) {
      VDIT_ASSIGN(std::unique_ptr<TensorFile> f, open_tensor_file(p));
      for (const TensorEntry& e : f->entries()) {
        if (merged->find(e.name)) {
          return format_error("tensor \"" + e.name + "\" is in two shards: " + merged->find(e.name)->source + " and " +
                              p);
        }
        TensorEntry copy = e;
        if (copy.source.empty()) copy.source = p;
        merged->add_entry(std::move(copy));
      }
      for (const auto& [k, v] : f->metadata()) merged->metadata_.emplace(k, v);
      merged->keep_alive_.push_back(std::shared_ptr<const void>(std::move(f)));
    }
    return std::unique_ptr<TensorFile>(std::move(merged));
  }
};

}  // namespace

std::string WanDitFiles::display_name() const {
  if (files.size() == 1) return files.front();
  return files.empty() ? std::string("(no files)")
                       : strfmt("%s (+%zu shards)", files.front().c_str(), files.size() - 1);
}

Result<WanDitFiles> locate_wan_dit_files(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  if (!fs::exists(p, ec))
    return not_found(path + ": no such file or directory (pass the DiT weights or a model directory)");
  WanDitFiles out;
  if (!fs::is_directory(p, ec)) {
    out.files = {path};
    out.layout = "file";
    out.config_json = config_beside(p.parent_path().empty() ? fs::path(".") : p.parent_path());
    return out;
  }
  if (is_file(p / "dit.safetensors")) {
    out.files = {(p / "dit.safetensors").string()};
    out.layout = "built-in directory";
    out.config_json = config_beside(p);
    return out;
  }
  out.files = find_diffusion_model_files(p);
  if (!out.files.empty()) {
    out.layout = "official directory";
    out.config_json = config_beside(p);
    return out;
  }
  if (fs::is_directory(p / "transformer", ec)) {
    out.files = find_diffusion_model_files(p / "transformer");
    if (!out.files.empty()) {
      out.layout = "diffusers directory";
      out.config_json = config_beside(p / "transformer");
      return out;
    }
  }
  return not_found(path +
                   ": directory holds no DiT weights: looked for dit.safetensors, "
                   "diffusion_pytorch_model.safetensors[.index.json], diffusion_pytorch_model-*-of-*.safetensors, "
                   "and the same under transformer/");
}

Result<std::unique_ptr<TensorFile>> open_wan_dit_files(const WanDitFiles& files) {
  if (files.files.empty()) return invalid_argument("no DiT weight files given");
  if (files.files.size() == 1) return open_tensor_file(files.files.front());
  return MergedTensorFile::open(files.files);
}

}  // namespace vdit::model
