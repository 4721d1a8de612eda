// safetensors inputs and outputs of a generation: embeddings, noise, latents.
#include "dit/pipeline/latent_files.h"

#include "io/safetensors_writer.h"
#include "io/tensor_file.h"

namespace vdit::pipeline {
namespace {

// Drops a leading batch dimension of 1 and checks the rank.
Result<Shape> strip_batch(Shape shape, size_t rank, const std::string& what) {
  if (shape.size() == rank + 1 && shape[0] == 1) shape.erase(shape.begin());
  if (shape.size() != rank) {
    return format_error(strfmt("%s has shape %s; expected %zu dimensions (optionally after a batch of 1)", what.c_str(),
                               shape_str(shape).c_str(), rank));
  }
  for (int64_t d : shape) {
    if (d <= 0) return format_error(what + " has an empty dimension: " + shape_str(shape));
  }
  return shape;
}

Result<Tensor> read_f32(const TensorFile& file, const std::string& name, size_t rank, const std::string& what) {
  const TensorEntry* e = file.find(name);
  if (!e) return not_found(what + ": no tensor \"" + name + "\"");
  if (!dtype_is_float(e->dtype))
    return format_error(strfmt("%s is %s; a float tensor is needed", what.c_str(), dtype_name(e->dtype)));
  VDIT_ASSIGN(Shape shape, strip_batch(e->shape, rank, what));
  VDIT_ASSIGN(Tensor t, file.tensor_f32(name));
  return t.reshape(shape);
}

}  // namespace

Result<TextEmbeddings> read_text_embeddings(const std::string& path) {
  VDIT_ASSIGN(auto file, open_tensor_file(path));
  TextEmbeddings out;
  VDIT_ASSIGN(out.context, read_f32(*file, "context", 2, path + ": \"context\""));
  if (file->find("negative_context")) {
    VDIT_ASSIGN(out.negative_context, read_f32(*file, "negative_context", 2, path + ": \"negative_context\""));
    if (out.negative_context.dim(1) != out.context.dim(1)) {
      return format_error(strfmt("%s: \"context\" is %s but \"negative_context\" is %s; their widths must agree",
                                 path.c_str(), shape_str(out.context.shape()).c_str(),
                                 shape_str(out.negative_context.shape()).c_str()));
    }
  }
  return out;
}

Result<Shape> peek_latent_shape(const std::string& path, const std::string& name) {
  VDIT_ASSIGN(auto file, open_tensor_file(path));
  const TensorEntry* e = file->find(name);
  if (!e) return not_found(path + ": no tensor \"" + name + "\"");
  return strip_batch(e->shape, 4, path + ": \"" + name + "\"");
}

Result<LatentTensor> read_latent_tensor(const std::string& path, const std::string& name) {
  VDIT_ASSIGN(auto file, open_tensor_file(path));
  LatentTensor out;
  VDIT_ASSIGN(out.value, read_f32(*file, name, 4, path + ": \"" + name + "\""));
  out.metadata = file->metadata();
  return out;
}

Status save_latents(const std::string& path, const Tensor& latents,
                    const std::map<std::string, std::string>& metadata) {
  if (!latents.defined() || latents.dtype() != DType::f32 || latents.rank() != 4) {
    return invalid_argument("save_latents needs an f32 [C, F', H', W'] tensor");
  }
  return save_safetensors(path, {{"latents", latents}}, metadata);
}

std::string recovery_latents_path(std::string output) {
  while (output.size() > 1 && output.back() == '/') output.pop_back();
  const size_t slash = output.find_last_of('/'), dot = output.find_last_of('.');
  if (dot != std::string::npos && dot > 0 && (slash == std::string::npos || dot > slash + 1)) output.resize(dot);
  return output + ".latents.safetensors";
}

}  // namespace vdit::pipeline
