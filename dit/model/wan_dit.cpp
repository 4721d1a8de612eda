// Loading the Wan2.1 DiT (files -> config -> exact key set -> f32 weights -> backend) and the CFG combination.
#include "dit/model/wan_dit.h"

#include "dit/core/device_buffer.h"
#include "dit/core/log.h"
#include "dit/core/parallel.h"
#include "dit/model/wan_dit_cpu.h"
#include "dit/model/wan_dit_cuda.h"
#include "dit/model/wan_files.h"
#include "dit/model/wan_names.h"
#include "dit/model/wan_weights.h"

namespace vdit::model {
namespace {

TensorShapes shapes_of(const TensorFile& file) {
  TensorShapes s;
  for (const TensorEntry& e : file.entries()) s.emplace(e.name, e.shape);
  return s;
}

// The backend for `device`: the CPU one keeps `file` (its f32 weights may map into it); the CUDA one
// uploads the weights once and needs neither afterwards.
Result<std::unique_ptr<WanDit>> make_backend(DitDevice device, std::shared_ptr<const TensorFile> file,
                                             const WanDitConfig& config, WanDitWeights weights) {
  if (device == DitDevice::cuda) return make_wan_dit_cuda(config, weights);
  return make_wan_dit_cpu(std::move(file), config, std::move(weights));
}

// Fails before any weight is read when the CUDA backend cannot run here.
Status check_device(DitDevice device) {
  if (device == DitDevice::cuda && cuda_device_count() == 0) {
    return unsupported("no CUDA device is visible (or this build has no CUDA backend); use the cpu device");
  }
  return Status::ok();
}

}  // namespace

const char* dit_device_name(DitDevice device) { return device == DitDevice::cpu ? "cpu" : "cuda"; }

Result<std::unique_ptr<WanDit>> create_wan_dit(std::shared_ptr<const TensorFile> file, const WanDitConfig& config,
                                               DitDevice device) {
  VDIT_TRY(check_device(device));
  if (!file) return invalid_argument("create_wan_dit: no weight file");
  VDIT_TRY(validate_wan_dit_config(config));
  const TensorShapes shapes = shapes_of(*file);
  VDIT_ASSIGN(WanLayout layout, detect_wan_dit_layout(shapes, file->path()));
  VDIT_ASSIGN(WanTensorNames names, match_wan_dit_tensors(config, shapes, layout, file->path()));
  VDIT_ASSIGN(WanDitWeights weights, load_wan_dit_weights(*file, config, names));
  return make_backend(device, std::move(file), config, std::move(weights));
}

Result<std::unique_ptr<WanDit>> load_wan_dit(const std::string& weights_path, const WanDitLoadOptions& options,
                                             WanDitSource* source) {
  VDIT_TRY(check_device(options.device));
  VDIT_ASSIGN(WanDitFiles files, locate_wan_dit_files(weights_path));
  VDIT_ASSIGN(std::unique_ptr<TensorFile> opened, open_wan_dit_files(files));
  std::shared_ptr<const TensorFile> file(std::move(opened));
  const TensorShapes shapes = shapes_of(*file);
  const std::string what = files.display_name();

  WanDitConfigSources sources;
  sources.weights_name = what;
  sources.config_json_path = files.config_json;
  sources.metadata = &file->metadata();
  sources.head_dim_hint = options.head_dim;
  VDIT_ASSIGN(WanDitConfig config, resolve_wan_dit_config(shapes, sources));
  VDIT_ASSIGN(WanLayout layout, detect_wan_dit_layout(shapes, what));
  VDIT_ASSIGN(WanTensorNames names, match_wan_dit_tensors(config, shapes, layout, what));
  VDIT_ASSIGN(WanDitWeights weights, load_wan_dit_weights(*file, config, names));

  if (source) {
    source->weights = what;
    source->layout = wan_layout_name(layout);
    source->directory = files.layout;
    source->config_from = files.config_json ? "config.json" : !file->metadata().empty() ? "metadata" : "tensor shapes";
  }
  VDIT_LOG_INFO("loaded Wan DiT from %s (%s names, %s): %s", what.c_str(), wan_layout_name(layout),
                files.layout.c_str(), config.to_string().c_str());
  return make_backend(options.device, std::move(file), config, std::move(weights));
}

Status classifier_free_guidance(Tensor* out, const Tensor& cond, const Tensor& uncond, double scale) {
  if (!out) return invalid_argument("classifier_free_guidance: out is null");
  if (!cond.defined() || !uncond.defined() || cond.shape() != uncond.shape()) {
    return invalid_argument("classifier_free_guidance: cond " + shape_str(cond.shape()) + " and uncond " +
                            shape_str(uncond.shape()) + " must have the same shape");
  }
  if (cond.dtype() != DType::f32 || uncond.dtype() != DType::f32) {
    return invalid_argument("classifier_free_guidance: cond and uncond must be f32");
  }
  Tensor dst = *out;
  if (!dst.defined() || dst.shape() != cond.shape() || dst.dtype() != DType::f32) {
    VDIT_ASSIGN(dst, Tensor::create(DType::f32, cond.shape()));
  }
  const float g = static_cast<float>(scale);
  const float* c = cond.f32();
  const float* u = uncond.f32();
  float* o = dst.f32();
  parallel_for_static(cond.numel(), [&](int64_t i) { o[i] = u[i] + g * (c[i] - u[i]); });
  *out = dst;
  return Status::ok();
}

}  // namespace vdit::model
