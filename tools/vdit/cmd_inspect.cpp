// `vdit inspect FILE...`: lists every tensor (name, dtype, shape, size) and the metadata of weight
// files in any supported format; `--json` prints one machine-readable JSON document instead.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "io/tensor_file.h"
#include "tools/vdit/command.h"

namespace vdit::cli {
namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) {
    b /= 1024.0;
    ++u;
  }
  return u == 0 ? strfmt("%.0f %s", b, units[u]) : strfmt("%.1f %s", b, units[u]);
}

struct InspectOptions {
  std::vector<std::string> files;
  bool json = false;
};

int run_inspect(const InspectOptions& o) {
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  int rc = 0;
  for (const std::string& path : o.files) {
    auto file = open_tensor_file(path);
    if (!file) {
      rc = report_error(file.status().message());
      continue;
    }
    const TensorFile& f = **file;
    size_t total_bytes = 0;
    int64_t total_params = 0;
    for (const auto& e : f.entries()) {
      total_bytes += e.nbytes;
      total_params += shape_numel(e.shape);
    }
    if (o.json) {
      nlohmann::ordered_json j;
      j["file"] = path;
      j["format"] = f.format();
      j["metadata"] = f.metadata();
      j["tensor_count"] = f.entries().size();
      j["parameter_count"] = total_params;
      j["bytes"] = total_bytes;
      nlohmann::ordered_json ts = nlohmann::ordered_json::array();
      for (const auto& e : f.entries()) {
        ts.push_back({{"name", e.name}, {"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"bytes", e.nbytes}});
      }
      j["tensors"] = ts;
      all.push_back(j);
      continue;
    }
    std::printf("%s (%s): %zu tensors, %lld parameters, %s\n", path.c_str(), f.format().c_str(), f.entries().size(),
                static_cast<long long>(total_params), human_bytes(static_cast<double>(total_bytes)).c_str());
    if (!f.metadata().empty()) {
      std::printf("metadata:\n");
      for (const auto& [k, v] : f.metadata()) std::printf("  %s = %s\n", k.c_str(), v.c_str());
    }
    size_t w = 4;
    for (const auto& e : f.entries()) w = std::max(w, e.name.size());
    std::printf("%-*s  %-5s  %-22s  %s\n", static_cast<int>(w), "name", "dtype", "shape", "size");
    for (const auto& e : f.entries()) {
      std::printf("%-*s  %-5s  %-22s  %s\n", static_cast<int>(w), e.name.c_str(), dtype_name(e.dtype),
                  shape_str(e.shape).c_str(), human_bytes(static_cast<double>(e.nbytes)).c_str());
    }
  }
  if (o.json) std::printf("%s\n", (o.files.size() == 1 && !all.empty() ? all[0] : all).dump(2).c_str());
  return rc;
}

std::function<int()> setup_inspect(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  app.add_option("files", o->files, "weight files: .safetensors, .safetensors.index.json, .pth/.pt, .onnx")->required();
  app.add_flag("--json", o->json, "print JSON (one object per file; an array for several files)");
  return [o] { return run_inspect(*o); };
}

}  // namespace

VDIT_REGISTER_COMMAND("inspect", "List the tensors and metadata of weight files", 90, setup_inspect);

}  // namespace vdit::cli
